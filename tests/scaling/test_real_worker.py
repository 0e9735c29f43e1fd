"""The real `framepress worker` (embedded mode: SQLite, local queue, local files): its /metrics
scraped during and after a task, and a pool scale-down that picks a worker mid-task."""
import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from framepress.scaling import metrics
from framepress.scaling.autoscale import Thresholds
from framepress.client import Client
from framepress.scaling.cluster import DEFAULT_WORKER_COMMAND, Pool
from framepress.config import Settings
from support.services import SLOW_LADDER, embedded_env, free_port, kinds, make_test_clip, wait_for

from .promtext import get, scrape, value


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """With SLOW_LADDER's slow presets, the transcode lasts a few seconds: long enough to act during it."""
    return make_test_clip(tmp_path_factory.mktemp("media") / "clip360.mp4", 8, "640x360").as_uri()


def ticked(pool):
    pool.tick()
    return True


@pytest.mark.timeout(90)
def test_worker_metrics_during_and_after_a_task(tmp_path, source):
    port = free_port()
    env = embedded_env(tmp_path, FRAMEPRESS_WORKER_REAPER="0", FRAMEPRESS_METRICS_PORT=str(port))
    client = Client(Settings.from_env(env))
    url = f"http://127.0.0.1:{port}"
    worker = subprocess.Popen([*DEFAULT_WORKER_COMMAND], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _answers(url) and get(url + "/readyz")[0] == get(url + "/healthz")[0] == 200, 30,
                 "the worker to be ready and healthy", 0.05)
        # A fresh worker has every outcome's and stage's series, at 0: rates and alerts work
        # from its first task on.
        fresh = scrape(url + "/metrics")
        assert {dict(k)["outcome"]: v for k, v in fresh["framepress_tasks_total"].items()} == \
            dict.fromkeys(metrics.TASK_OUTCOMES, 0)
        for stage in metrics.STAGES:
            assert value(fresh, "framepress_stage_duration_seconds_count", stage=stage) == 0
            assert value(fresh, "framepress_stage_duration_seconds_bucket", stage=stage, le="+Inf") == 0
        for counter in ("framepress_retries_total", "framepress_escalations_total",
                        "framepress_workers_lost_total"):
            assert value(fresh, counter) == 0, counter
        task = client.submit(source, ladder=SLOW_LADDER)
        during = wait_for(lambda: _scrape_if(url, lambda s: value(s, "framepress_tasks_in_progress") == 1),
                          30, "the task in progress on /metrics", 0.05)
        assert client.status(task)["status"] == "running"
        assert value(during, "framepress_worker_draining") == 0
        assert value(during, "framepress_tasks_total", outcome="succeeded") == 0
        assert get(url + "/healthz") == (200, "ok\n")
        assert 0 <= value(during, "framepress_cpu_utilization_ratio") <= 1

        wait_for(lambda: client.status(task)["status"] == "succeeded", 60, "the task to succeed", 0.2)
        after = wait_for(lambda: _scrape_if(url, lambda s: value(s, "framepress_tasks_in_progress") == 0),
                         10, "the task to leave /metrics' in-progress gauge", 0.05)
        assert value(after, "framepress_tasks_total", outcome="succeeded") == 1
        assert value(after, "framepress_task_duration_seconds_count") == 1
        assert value(after, "framepress_transcode_fps") > 0
        assert {dict(k)["outcome"]: v for k, v in after["framepress_tasks_total"].items()} == \
            {**dict.fromkeys(metrics.TASK_OUTCOMES, 0), "succeeded": 1}
        stages = {dict(k)["stage"] for k, v in after["framepress_stage_duration_seconds_count"].items() if v}
        assert "transcode" in stages, stages
        for stage in stages:
            assert value(after, "framepress_stage_duration_seconds_count", stage=stage) == 1
            assert value(after, "framepress_stage_duration_seconds_sum", stage=stage) >= 0
        assert value(after, "framepress_gpus") is not None  # 0 here unless the machine has a GPU
        assert value(after, "framepress_cpu_limit_cores") > 0

        worker.send_signal(signal.SIGTERM)  # idle: drains at once
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
        client.close()


def _answers(url):
    try:
        get(url + "/healthz", timeout=1)
        return True
    except OSError:
        return False


def _scrape_if(url, condition):
    try:
        s = scrape(url + "/metrics", timeout=2)
    except OSError:
        return None
    return s if condition(s) else None


@pytest.mark.timeout(90)
def test_scale_down_mid_task_drains_and_the_task_finishes_exactly_once(tmp_path, source):
    env = embedded_env(tmp_path, FRAMEPRESS_WORKER_REAPER="0", FRAMEPRESS_METRICS_PORT="0")
    client = Client(Settings.from_env(env))
    utilization = {"now": 0.5}  # inside the band: hold until the test says the pool is idle
    pool = Pool(0, 1, lambda: utilization["now"], initial=1, interval_s=0.1, env=env,
                thresholds=Thresholds(high=0.8, low=0.2, window_s=0.3, up_cooldown_s=0, down_cooldown_s=0))
    pool.start()
    try:
        (worker,) = pool.workers
        task = client.submit(source, ladder=SLOW_LADDER)
        # Tick while the worker picks the task up; nothing changes inside the band.
        wait_for(lambda: ticked(pool) and "taken" in kinds(client.status(task)), 60, "the task to be taken", 0.1)
        assert pool.workers == [worker]
        utilization["now"] = 0.05  # idle: the pool scales down and must choose this busy worker
        wait_for(lambda: ticked(pool) and worker.draining, 10, "the scale-down", 0.1)
        # SIGTERM reached it mid-task: the task was still running when the drain began.
        assert client.status(task)["status"] == "running"
        assert pool.events[-1].kind == "draining" and pool.events[-1].detail["pid"] == worker.pid
        down = [e.detail for e in pool.events if e.kind == "decision" and e.detail["action"] == "down"]
        assert down and down[0]["current"] == 1 and down[0]["target"] == 0

        wait_for(lambda: ticked(pool) and not pool.workers, 60, "the worker to finish and exit", 0.2)
        exited = [e.detail for e in pool.events if e.kind == "exited"]
        assert exited == [{"pid": worker.pid, "rc": 0, "drained": True}]
        # The pool stays at its minimum of 0 and does not start a replacement.
        for _ in range(3):
            pool.tick()
        assert not pool.workers

        st = client.status(task)
        assert st["status"] == "succeeded"
        counts = Counter(kinds(st))
        assert counts["taken"] == 1 and counts["succeeded"] == 1 and counts["uploaded"] == 1
        assert not {"requeued", "error", "retry_scheduled", "duplicate_delivery", "incomplete"} & counts.keys()
        assert len(st["renditions"]) == 2
        for r in st["renditions"]:
            assert Path(r["uri"][len("file://"):]).is_file()
    finally:
        pool.shutdown(timeout_s=30)
        client.close()
