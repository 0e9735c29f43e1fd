"""Per-task scratch directories that a crashed worker cannot leak.

Each directory holds an `.owner` file locked (flock) by the process using it. The kernel drops the
lock when that process dies, however it dies (kill -9 included), so a directory whose lock can be
taken belongs to nobody and is removed by the next worker that starts on the same scratch root.
"""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

log = logging.getLogger("framepress.worker")

PREFIX = "framepress-"
OWNER = ".owner"
# A directory without its owner file yet is being set up right now, unless it is this old.
UNCLAIMED_GRACE_SECONDS = 60.0


@contextmanager
def scratch_dir(root: str, task_id: str) -> Iterator[Path]:
    """A new directory under `root`, locked for as long as the block runs, then removed."""
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{task_id[:8]}-", dir=root))
    # Locked before it takes its name, so a sweep never finds the owner file unlocked.
    fd = os.open(path / f"{OWNER}-new", os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.rename(path / f"{OWNER}-new", path / OWNER)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(fd)


def _unowned(path: Path) -> bool:
    try:
        fd = os.open(path / OWNER, os.O_RDONLY)
    except FileNotFoundError:
        # Only what a scratch_dir leaves before its owner file is in place: nothing, or the
        # owner file still being written. Anything else under our prefix is somebody else's
        # (a scratch root such as /tmp is shared) and never removed.
        try:
            contents = {p.name for p in path.iterdir()}
            return (contents <= {f"{OWNER}-new"}
                    and time.time() - path.stat().st_mtime > UNCLAIMED_GRACE_SECONDS)
        except OSError:
            return False
    except OSError:  # another user's, say: not ours to judge
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing drops the probe's own lock


def sweep_stale(root: str) -> list[str]:
    """Removes the scratch directories under `root` that no live process owns; returns them."""
    removed = []
    try:
        candidates = [p for p in Path(root).iterdir() if p.name.startswith(PREFIX) and p.is_dir()]
    except OSError:
        return removed
    for path in candidates:
        if _unowned(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path))
    if removed:
        log.info("removed %d scratch directories left by dead workers", len(removed),
                 extra={"data": {"paths": removed}})
    return removed
