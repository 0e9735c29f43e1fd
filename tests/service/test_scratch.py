"""Scratch directories: removed after a task, and after a worker killed mid-task by the next one."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from framepress.service.scratch import OWNER, UNCLAIMED_GRACE_SECONDS, scratch_dir, sweep_stale

HOLDER = textwrap.dedent("""
    import sys, time
    from framepress.service.scratch import scratch_dir
    with scratch_dir(sys.argv[1], sys.argv[2]) as path:
        (path / "source.mp4").write_bytes(b"x" * 1024)
        print(path, flush=True)
        time.sleep(600)
""")


def _holder(root: Path, task_id: str) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(root), task_id], stdout=subprocess.PIPE, text=True)
    return proc, Path(proc.stdout.readline().strip())


def test_scratch_directory_is_removed_after_the_task(tmp_path):
    with scratch_dir(str(tmp_path), "0123456789abcdef") as path:
        (path / "out").mkdir()
        assert path.parent == tmp_path and path.name.startswith("framepress-01234567-")
        assert (path / OWNER).read_text().strip() == str(os.getpid())
    assert not path.exists()


def test_sweep_removes_what_a_killed_worker_left_and_keeps_live_work(tmp_path):
    dead, dead_path = _holder(tmp_path, "deaddeaddead")
    live, live_path = _holder(tmp_path, "11111111aaaa")
    try:
        assert sweep_stale(str(tmp_path)) == []            # both owners alive: nothing goes
        dead.send_signal(signal.SIGKILL)
        dead.wait(10)
        assert dead_path.exists()                          # kill -9 ran no cleanup
        assert sweep_stale(str(tmp_path)) == [str(dead_path)]
        assert not dead_path.exists()
        assert (live_path / "source.mp4").stat().st_size == 1024
    finally:
        live.kill()
        live.wait(10)


def test_sweep_spares_a_directory_being_set_up_but_not_an_old_unclaimed_one(tmp_path):
    fresh = tmp_path / "framepress-aaaaaaaa-new"
    old = tmp_path / "framepress-bbbbbbbb-old"
    other = tmp_path / "not-ours"
    for d in (fresh, old, other):
        d.mkdir()
    past = time.time() - UNCLAIMED_GRACE_SECONDS - 5
    os.utime(old, (past, past))
    os.utime(other, (past, past))
    assert sweep_stale(str(tmp_path)) == [str(old)]
    assert fresh.exists() and other.exists() and not old.exists()


def test_sweep_leaves_another_programs_directory_under_the_prefix_alone(tmp_path):
    """A shared scratch root (/tmp) holds other directories named framepress-… (a test's own
    database cluster, say): without an owner file and with contents of their own, never ours."""
    foreign = tmp_path / "framepress-pg-data"
    (foreign / "base").mkdir(parents=True)
    (foreign / "PG_VERSION").write_text("15\n")
    half_made = tmp_path / "framepress-cccccccc-half"
    half_made.mkdir()
    (half_made / f"{OWNER}-new").write_text("")
    past = time.time() - UNCLAIMED_GRACE_SECONDS - 5
    for d in (foreign, half_made):
        os.utime(d, (past, past))
    assert sweep_stale(str(tmp_path)) == [str(half_made)]
    assert (foreign / "PG_VERSION").exists()


def test_sweep_of_a_missing_root_does_nothing(tmp_path):
    assert sweep_stale(str(tmp_path / "absent")) == []
