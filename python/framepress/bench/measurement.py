"""Wall seconds, CPU seconds and peak memory of subprocesses, measured the kernel's way.

Every system under test (the engine included) runs as its own process tree, so the figures come
from the same place for all of them: `os.wait4` returns the rusage of a child, which covers its
own CPU time plus that of the descendants it waited for, and `ru_maxrss` (the largest resident
set of the tree's processes). Output goes to files, not pipes, so a chatty child cannot block.

A small launcher (a bare Python) starts each command and reports the rusage. The kernel carries
the resident set of the process that spawns a program into that program's `ru_maxrss` (exec
records the old image's high-water mark), so spawning straight from this process, which holds
numpy, PyAV and matplotlib, would floor every peak at this process's size.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
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


# Runs in `python -S -I`: spawn the command, wait4 it, write its rusage and wall time as JSON.
LAUNCHER = """
import json, os, sys, time
cmd, report = json.loads(sys.argv[1]), sys.argv[2]
start = time.perf_counter()
pid = os.posix_spawnp(cmd[0], cmd, os.environ)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(report, "w") as f:
    json.dump({"wall": wall, "user": ru.ru_utime, "sys": ru.ru_stime, "maxrss_kb": ru.ru_maxrss}, f)
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)     # killed by a signal: the shell's 128 + N
"""


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
    with tempfile.TemporaryDirectory(prefix="framepress-bench-") as tmp:
        reports = [os.path.join(tmp, f"{i}.json") for i in range(len(commands))]
        procs = [subprocess.Popen([sys.executable, "-S", "-I", "-c", LAUNCHER, json.dumps(list(cmd)), rep],
                                  stdin=subprocess.DEVNULL, stdout=o, stderr=e, env=env,
                                  start_new_session=True)      # a group, so a timeout kills it all
                 for cmd, o, e, rep in zip(commands, outs, errs, reports)]
        codes = _wait_all(procs, timeout_s)
        usage = []
        for rep, code in zip(reports, codes):
            try:
                with open(rep) as f:
                    usage.append(json.load(f))
            except (OSError, ValueError):     # the launcher itself failed (e.g. no such program)
                usage.append({"wall": 0.0, "user": 0.0, "sys": 0.0, "maxrss_kb": 0})
    stdout = _read_tail(outs[0], limit=1 << 20)
    stderr = "\n".join(_read_tail(e) for e, rc in zip(errs, codes) if rc != 0)
    for f in outs + errs:
        f.close()
    user = sum(u["user"] for u in usage)
    system = sum(u["sys"] for u in usage)
    ends = [u["wall"] for u in usage]
    return Measurement(wall_s=max(ends), cpu_s=user + system, user_s=user, sys_s=system,
                       peak_rss_mb=sum(u["maxrss_kb"] for u in usage) / 1024.0, returncodes=codes,
                       process_wall_s=ends, stdout=stdout, stderr_tail=stderr)


def _wait_all(procs: list[subprocess.Popen], timeout_s: float) -> list[int]:
    """Exit codes of every process; kills them all if the run outlasts `timeout_s`."""
    deadline = time.perf_counter() + timeout_s
    try:
        return [p.wait(timeout=max(0.0, deadline - time.perf_counter())) for p in procs]
    except subprocess.TimeoutExpired:
        for p in procs:
            try:
                os.killpg(p.pid, 9)
            except ProcessLookupError:
                pass
        for p in procs:
            p.wait()
        raise TimeoutError(f"benchmark command ran past {timeout_s:g} s") from None
