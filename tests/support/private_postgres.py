"""A Postgres cluster of a test's own (initdb + pg_ctl on a free port and data directory), so a
test can stop, crash and restart "the database" without touching the shared server.

    with private_postgres(tmp_path) as pg:
        url = pg.create_database("fp")       # postgresql://postgres@127.0.0.1:<port>/fp
        pg.stop()                            # a clean shutdown (pg_ctl stop -m fast)
        pg.crash()                           # pg_ctl stop -m immediate: no checkpoint, like kill -9
        pg.start()

The server binaries come from `pg_config --bindir` or the newest /usr/lib/postgresql/*/bin.
Postgres refuses to run as root: as root, the cluster runs as the `postgres` user in a directory
of its own (removed afterwards), since a test's tmp dir is private to root.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from .services import free_port


def server_bindir() -> Path:
    """The directory holding initdb and pg_ctl; fails loudly when there is none."""
    candidates = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                         key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
                         reverse=True)
    for d in candidates:
        if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists():
            return Path(d)
    raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl) found: install postgresql")


class PrivatePostgres:
    def __init__(self, root: Path, port: Optional[int] = None) -> None:
        self.bindir = server_bindir()
        self.port = port or free_port()
        self._as_root = os.geteuid() == 0
        if self._as_root:
            # The postgres user cannot enter root's private tmp dirs.
            self.root = Path(tempfile.mkdtemp(prefix="fp-private-pg-"))
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        else:
            self.root = Path(root) / "private-postgres"
            self.root.mkdir(parents=True, exist_ok=True)
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync", "--no-instructions")
        self.running = False

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / tool), *args]
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} exited {proc.returncode}:\n"
                               f"{proc.stdout}\n{proc.stderr}\n{self.server_log()[-3000:]}")
        return proc

    def server_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories={self.root} -c fsync=off "
                   f"-c full_page_writes=off -c max_connections=100")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                  "-t", "60", "start")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Shut the server down: `fast` (clients disconnected, clean) or `immediate` (a crash)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        self.running = False

    def crash(self) -> None:
        self.stop("immediate")

    def create_database(self, name: str) -> str:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.url(name)

    def close(self) -> None:
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
            self.running = False
        if self._as_root:
            shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def private_postgres(root: Path) -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres(root)
    try:
        pg.start()
        yield pg
    finally:
        pg.close()
