"""The local pool: scales up under CPU load, drains back down when idle; drained workers exit 0."""
import os
import sys
import time
from pathlib import Path

import pytest

from framepress.scaling.autoscale import Thresholds
from framepress.scaling.cluster import Pool

pytestmark = pytest.mark.timeout(60)

STANDIN = [sys.executable, str(Path(__file__).with_name("standin_worker.py"))]
FAST = Thresholds(high=0.2, low=0.05, window_s=1.0, up_cooldown_s=0.5, down_cooldown_s=0.5)


def run_until(pool, condition, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pool.tick()
        if condition():
            return True
        time.sleep(pool.interval_s)
    return False


def workers_mean_cpu(pool):
    """Mean busy cores per active worker, from the pool's own per-process CPU accounting.

    The shared test machine's total CPU is not ours to reason about; the workers' CPU is."""
    def sample():
        active = pool.active
        return min(1.0, sum(w.cpu_rate for w in active) / len(active)) if active else 0.0
    return sample


def test_scales_up_under_load_and_drains_down_when_idle(tmp_path):
    load, record = tmp_path / "load", tmp_path / "events.log"
    env = dict(os.environ, STANDIN_LOAD=str(load), STANDIN_LOG=str(record))
    holder = {}
    pool = Pool(1, 3, lambda: holder["sample"](), thresholds=FAST, command=STANDIN, interval_s=0.25,
                env=env, drain_timeout_s=30)
    holder["sample"] = workers_mean_cpu(pool)
    pool.start()
    try:
        assert len(pool.active) == 1
        load.touch()  # every worker burns CPU
        assert run_until(pool, lambda: len(pool.active) == 3, timeout=20), pool.events[-5:]
        ups = [e for e in pool.events if e.kind == "decision" and e.detail["action"] == "up"]
        assert [(e.detail["current"], e.detail["target"]) for e in ups] == [(1, 2), (2, 3)]
        assert all(e.detail["utilization"] > FAST.high for e in ups)
        # At the maximum it holds, and says why.
        run_until(pool, lambda: False, timeout=1.0)
        assert pool.events[-1].detail["action"] == "hold" and len(pool.active) == 3

        load.unlink()  # idle
        assert run_until(pool, lambda: len(pool.workers) == 1, timeout=20), pool.events[-5:]
        downs = [e for e in pool.events if e.kind == "decision" and e.detail["action"] == "down"]
        assert [(e.detail["current"], e.detail["target"]) for e in downs] == [(3, 2), (2, 1)]
        assert all(e.detail["utilization"] < FAST.low for e in downs)
        exits = [e.detail for e in pool.events if e.kind == "exited"]
        assert len(exits) == 2 and all(e["drained"] and e["rc"] == 0 for e in exits)
        # Each drained worker saw SIGTERM and left on its own after finishing its unit of work.
        lines = record.read_text().split()
        drained_pids = {int(p) for p, ev in zip(lines[::2], lines[1::2]) if ev == "drained"}
        assert drained_pids == {e["pid"] for e in exits}
        # The last decision before each drain was logged with its reason.
        assert all("below 0.05" in e.detail["reason"] for e in downs)
    finally:
        pool.shutdown(timeout_s=10)
    assert not pool.workers


def test_a_worker_that_dies_is_replaced(tmp_path):
    env = dict(os.environ, STANDIN_LOAD=str(tmp_path / "load"), STANDIN_LOG=str(tmp_path / "log"))
    pool = Pool(2, 2, lambda: 0.5, thresholds=FAST, command=STANDIN, interval_s=0.1, env=env)
    pool.start()
    try:
        victim = pool.active[0]
        victim.proc.kill()
        victim.proc.wait()
        assert run_until(pool, lambda: len(pool.active) == 2 and victim not in pool.workers, timeout=10)
        exited = [e.detail for e in pool.events if e.kind == "exited"]
        assert exited == [{"pid": victim.pid, "rc": -9, "drained": False}]
    finally:
        pool.shutdown(timeout_s=10)


def test_shutdown_cancels_a_worker_that_does_not_drain(tmp_path):
    # A worker that ignores the first SIGTERM gets the second (cancel) after the timeout, then SIGKILL.
    stubborn = [sys.executable, "-c",
                "import signal, time\n"
                "n = []\n"
                "signal.signal(signal.SIGTERM, lambda *a: n.append(1) if not n else exit(3))\n"
                "while True: time.sleep(0.05)\n"]
    pool = Pool(1, 1, lambda: 0.5, thresholds=FAST, command=stubborn, interval_s=0.1)
    pool.start()
    time.sleep(0.5)  # let it install its handler
    pool.shutdown(timeout_s=0.5)
    kinds = [e.kind for e in pool.events]
    assert "cancel" in kinds and "killed" not in kinds
    assert [e.detail["rc"] for e in pool.events if e.kind == "exited"] == [3]


def test_cli_runs_the_pool_and_drains_it_on_sigterm(tmp_path):
    import shlex
    import signal
    import subprocess

    env = dict(os.environ, STANDIN_LOAD=str(tmp_path / "load"), STANDIN_LOG=str(tmp_path / "log"))
    cmd = [sys.executable, "-c", "from framepress.cli import run; run()", "cluster", "--min", "2", "--max", "3",
           "--interval", "0.2", "--window", "0.5", "--metrics-port-base", "0",
           "--high", "1", "--low", "0",  # the shared machine's CPU must not move this pool
           "--worker-command", shlex.join(STANDIN)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (tmp_path / "log").exists() or \
                len((tmp_path / "log").read_text().splitlines()) < 2:
            time.sleep(0.1)
        time.sleep(1.0)  # a few decisions
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert out.count("worker started") == 2
    assert "decision hold workers=2->2" in out  # every tick's decision is logged, holds included
    assert out.count("drained and exited rc=0") == 2
    lines = (tmp_path / "log").read_text().split()
    assert sorted(lines[1::2]) == ["drained", "drained", "started", "started"]


def test_cli_rejects_bad_bounds():
    import subprocess

    cmd = [sys.executable, "-c", "from framepress.cli import run; run()", "cluster", "--min", "3", "--max", "2"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "--min 3 is above --max 2" in out.stderr
    out = subprocess.run(cmd[:-4] + ["--high", "0.2", "--low", "0.5"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "low < high" in out.stderr


def test_scale_down_drains_the_least_busy_worker(tmp_path):
    env = dict(os.environ, STANDIN_LOAD=str(tmp_path / "load"), STANDIN_LOG=str(tmp_path / "log"))
    pool = Pool(1, 3, lambda: 0.0, initial=3, thresholds=FAST, command=STANDIN, interval_s=0.1, env=env)
    pool.start()
    try:
        busy = pool.workers[:2]
        # Stand in for the per-process CPU accounting: two workers are mid-task, one is idle.
        pool._update_busy = lambda now, elapsed: [setattr(w, "cpu_rate", 0.9 if w in busy else 0.0)
                                                  for w in pool.workers]
        assert run_until(pool, lambda: pool.draining, timeout=10)
        (drained,) = pool.draining
        assert drained not in busy
    finally:
        pool.shutdown(timeout_s=10)


def test_a_crash_looping_worker_is_restarted_with_backoff():
    # Load inside the band: only the crash restarts start workers, however late a busy machine ticks.
    pool = Pool(1, 2, lambda: 0.1, thresholds=FAST, command=[sys.executable, "-c", "raise SystemExit(1)"],
                interval_s=0.05)
    pool.start()
    try:
        run_until(pool, lambda: False, timeout=2.5)
    finally:
        pool.shutdown(timeout_s=5)
    starts = [e for e in pool.events if e.kind == "started"]
    crashes = [e.detail for e in pool.events if e.kind == "exited"]
    # Ticks every 50 ms, but restarts wait 1 s, then 2 s: the first start and one restart.
    assert len(starts) == 2, [e.at for e in starts]
    assert all(c["rc"] == 1 and not c["drained"] for c in crashes)


def test_cli_gpu_metric_needs_a_gpu():
    import subprocess

    from framepress.scaling.sysmetrics import GpuSampler

    if GpuSampler().count:
        pytest.skip("this machine has a GPU")
    cmd = [sys.executable, "-c", "from framepress.cli import run; run()", "cluster", "--metric", "gpu"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "no GPU visible through NVML" in out.stderr
