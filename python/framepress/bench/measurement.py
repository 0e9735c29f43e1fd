"""Wall seconds, CPU seconds and peak memory of subprocesses, measured the kernel's way.

Every system under test (the engine included) runs as its own process tree, so the figures come
from the same place for all of them: `os.wait4` returns the rusage of a child, which covers its
own CPU time plus that of the descendants it waited for, and `ru_maxrss` (the largest resident
set of the tree's processes). Output goes to files, not pipes, so a chatty child cannot block.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence


@dataclass
class Measurement:
    wall_s: float
    cpu_s: float          # user + system, summed over every process
    user_s: float
    sys_s: float
    peak_rss_mb: float    # one process: its peak; concurrent processes: the sum of their peaks
    returncodes: list[int] = field(default_factory=list)
    process_wall_s: list[float] = field(default_factory=list)   # each process's own end time
    stdout: str = ""      # the first process's stdout (the engine prints its result there)
    stderr_tail: str = ""

    @property
    def ok(self) -> bool:
        return all(rc == 0 for rc in self.returncodes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("stdout")
        return d


def _read_tail(f, limit: int = 4000) -> str:
    f.seek(0)
    return f.read().decode(errors="replace")[-limit:]


def run_measured(commands: Sequence[Sequence[str]], *, env: Optional[dict] = None,
                 timeout_s: float = 3600.0) -> Measurement:
    """Start every command at once, wait for all, and account each one's rusage.

    Concurrent processes' peaks are summed: they overlap for nearly the whole run, so the sum is
    what the machine has to hold (an upper bound when their peaks do not coincide).
    """
    outs = [tempfile.TemporaryFile() for _ in commands]
    errs = [tempfile.TemporaryFile() for _ in commands]
    started = time.perf_counter()
    procs = [subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=o, stderr=e, env=env)
             for cmd, o, e in zip(commands, outs, errs)]
    codes: list[int] = [0] * len(procs)
    ends: list[float] = [0.0] * len(procs)
    usages: list = [None] * len(procs)

    def reap(i: int) -> None:   # one blocking wait4 per child: exact end time and rusage each
        _, status, usages[i] = os.wait4(procs[i].pid, 0)
        ends[i] = time.perf_counter() - started
        procs[i].returncode = codes[i] = os.waitstatus_to_exitcode(status)

    reapers = [threading.Thread(target=reap, args=(i,), daemon=True) for i in range(len(procs))]
    for t in reapers:
        t.start()
    for t in reapers:
        t.join(max(0.0, started + timeout_s - time.perf_counter()))
    if any(t.is_alive() for t in reapers):
        for p in procs:
            if p.returncode is None:
                p.kill()
        for t in reapers:
            t.join()
        raise TimeoutError(f"benchmark command ran past {timeout_s:g} s")
    wall = max(ends)
    user = sum(u.ru_utime for u in usages)
    system = sum(u.ru_stime for u in usages)
    peak_kb = sum(u.ru_maxrss for u in usages)         # kilobytes on Linux
    stdout = _read_tail(outs[0], limit=1 << 20)
    stderr = "\n".join(_read_tail(e) for e, rc in zip(errs, codes) if rc != 0)
    for f in outs + errs:
        f.close()
    return Measurement(wall_s=wall, cpu_s=user + system, user_s=user, sys_s=system,
                       peak_rss_mb=peak_kb / 1024.0, returncodes=codes, process_wall_s=ends,
                       stdout=stdout, stderr_tail=stderr)
