"""Wall, CPU and peak memory of child processes come from the kernel's rusage."""
from __future__ import annotations

import sys

from framepress.bench.measurement import run_measured

ALLOCATE = "x = bytearray({mb} * 1024 * 1024); x[::4096] = b'1' * len(x[::4096])"
SPIN = "import time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass"


def test_one_process_peak_memory_and_cpu():
    m = run_measured([[sys.executable, "-c", ALLOCATE.format(mb=120) + "\n" + SPIN.format(s=0.3)]])
    assert m.ok and m.returncodes == [0]
    assert m.peak_rss_mb >= 120
    assert m.cpu_s >= 0.3 and m.wall_s >= 0.3
    assert m.cpu_s == m.user_s + m.sys_s


def test_concurrent_processes_sum_cpu_and_peaks():
    one = [sys.executable, "-c", ALLOCATE.format(mb=60) + "\n" + SPIN.format(s=0.2)]
    m = run_measured([one, one])
    assert m.peak_rss_mb >= 120
    assert m.cpu_s >= 0.4
    assert len(m.process_wall_s) == 2 and m.wall_s == max(m.process_wall_s)


def test_failure_keeps_stderr():
    m = run_measured([[sys.executable, "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"]])
    assert not m.ok and m.returncodes == [3] and "boom" in m.stderr_tail


def test_peak_is_not_floored_by_the_parents_size():
    """exec carries the spawner's resident set into ru_maxrss; the launcher keeps it out."""
    ballast = bytearray(300 * 1024 * 1024)
    ballast[::4096] = b"1" * len(ballast[::4096])
    m = run_measured([[sys.executable, "-S", "-c", "pass"]])
    assert m.ok and m.peak_rss_mb < 100
    del ballast


def test_timeout_kills_the_whole_tree():
    import pytest
    with pytest.raises(TimeoutError):
        run_measured([["sleep", "30"]], timeout_s=0.5)
