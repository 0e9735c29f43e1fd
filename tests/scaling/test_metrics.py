"""/metrics, /healthz and /readyz served over HTTP: series and labels from a scrape."""
import socket
import subprocess
import sys

import pytest
from prometheus_client import CollectorRegistry

import framepress
from framepress.scaling import metrics
from framepress.scaling.sysmetrics import CpuSampler, GpuSampler
from framepress.config import Settings
from support.services import FRAMEPRESS, embedded_env, free_port, ladder, make_test_clip, wait_for

from .fake_nvml import TWO_GPUS, FakeNVML
from .promtext import get, scrape, value

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def serve():
    servers = []

    def start(health=lambda: (True, "ok"), ready=lambda: (True, "ready"), **kw):
        server = metrics.start_server(0, health, ready, addr="127.0.0.1", **kw)
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def test_fake_nvml_gives_per_gpu_series(serve):
    collector = metrics.SystemCollector(gpu=GpuSampler(FakeNVML(TWO_GPUS)))
    url = serve(registry=CollectorRegistry(), system_collector=collector)
    s = scrape(url + "/metrics")
    assert value(s, "framepress_gpus") == 2
    assert value(s, "framepress_gpu_utilization_ratio", gpu="0") == pytest.approx(0.40)
    assert value(s, "framepress_gpu_utilization_ratio", gpu="1") == pytest.approx(0.10)
    assert value(s, "framepress_gpu_encoder_utilization_ratio", gpu="0") == pytest.approx(0.85)
    # The H200 has no NVENC: no encoder series for it rather than a made-up zero.
    assert value(s, "framepress_gpu_encoder_utilization_ratio", gpu="1") is None
    assert value(s, "framepress_gpu_decoder_utilization_ratio", gpu="1") == pytest.approx(0.90)
    assert value(s, "framepress_gpu_memory_used_bytes", gpu="0") == 3 * 2**30
    assert value(s, "framepress_gpu_memory_total_bytes", gpu="1") == 141 * 2**30
    assert value(s, "framepress_gpu_info", gpu="1", name="NVIDIA H200", uuid="GPU-fake-1") == 1
    assert 0 <= value(s, "framepress_cpu_utilization_ratio") <= 1


def test_no_nvml_means_no_gpu_series_and_no_error(serve, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` raises ImportError
    url = serve(registry=CollectorRegistry(), system_collector=metrics.SystemCollector())
    s = scrape(url + "/metrics")
    assert value(s, "framepress_gpus") == 0
    assert not [name for name in s if name.startswith("framepress_gpu_")]
    assert 0 <= value(s, "framepress_cpu_utilization_ratio") <= 1
    assert value(s, "framepress_cpu_limit_cores") >= 0.01
    # A driver that fails to initialise is the same as none.
    url = serve(registry=CollectorRegistry(),
                system_collector=metrics.SystemCollector(gpu=GpuSampler(FakeNVML(TWO_GPUS, fail_init=True))))
    assert value(scrape(url + "/metrics"), "framepress_gpus") == 0


def test_health_and_readiness(serve):
    state = {"healthy": True, "ready": False}
    url = serve(health=lambda: (state["healthy"], "engine progressing" if state["healthy"] else "engine stuck"),
                ready=lambda: (state["ready"], "connected" if state["ready"] else "broker not connected"),
                registry=CollectorRegistry(), system_collector=metrics.SystemCollector(cpu=CpuSampler()))
    assert get(url + "/healthz") == (200, "engine progressing\n")
    assert get(url + "/readyz") == (503, "broker not connected\n")
    state.update(healthy=False, ready=True)
    assert get(url + "/healthz") == (503, "engine stuck\n")
    assert get(url + "/readyz") == (200, "connected\n")
    try:
        metrics.set_draining(True)  # a draining worker is never ready
        assert get(url + "/readyz") == (503, "draining\n")
    finally:
        metrics.set_draining(False)
    assert get(url + "/readyz")[0] == 200
    assert get(url + "/nope")[0] == 404


def test_a_check_that_raises_is_unhealthy(serve):
    def broken():
        raise RuntimeError("heartbeat thread gone")

    url = serve(health=broken, registry=CollectorRegistry(), system_collector=metrics.SystemCollector())
    status, body = get(url + "/healthz")
    assert status == 503 and "heartbeat thread gone" in body


TINY_LADDER = ladder("tiny", [(180, 300000, "ultrafast"), (120, 150000, "ultrafast")], segment_seconds=2)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_test_clip(tmp_path_factory.mktemp("media") / "clip.mp4", 2, "320x240", rate=25)


def test_scrape_during_and_after_a_real_transcode(serve, clip, tmp_path):
    """The worker's calls around a real engine run, scraped from the default registry over HTTP."""
    url = serve()
    before = scrape(url + "/metrics")
    ok_before = value(before, "framepress_tasks_total", outcome="succeeded") or 0
    count_before = value(before, "framepress_stage_duration_seconds_count", stage="transcode") or 0

    metrics.task_started()
    during = scrape(url + "/metrics")
    assert value(during, "framepress_tasks_in_progress") == value(before, "framepress_tasks_in_progress") + 1
    in_progress_seen = []
    result = framepress.transcode(
        clip, tmp_path / "out", ladder=TINY_LADDER, hwaccel="cpu",
        on_progress=lambda p: in_progress_seen.append(value(scrape(url + "/metrics"), "framepress_tasks_in_progress")))
    metrics.stage_observed("transcode", result.seconds.get("total", sum(result.seconds.values())))
    metrics.transcode_fps(result.decoded_frames / max(1e-6, sum(result.seconds.values())))
    metrics.task_finished("succeeded", 1.5)

    after = scrape(url + "/metrics")
    assert all(v >= 1 for v in in_progress_seen)  # scrapes from inside the engine's progress callback
    assert value(after, "framepress_tasks_in_progress") == value(before, "framepress_tasks_in_progress")
    assert value(after, "framepress_tasks_total", outcome="succeeded") == ok_before + 1
    assert value(after, "framepress_stage_duration_seconds_count", stage="transcode") == count_before + 1
    assert value(after, "framepress_stage_duration_seconds_bucket", stage="transcode", le="+Inf") == count_before + 1
    assert value(after, "framepress_task_duration_seconds_count") >= 1
    assert value(after, "framepress_transcode_fps") > 0
    assert result.decoded_frames == 50
    assert value(after, "framepress_worker_draining") == 0
    assert value(after, "framepress_cpu_utilization_ratio") is not None
    assert value(after, "framepress_gpus") is not None


def _ghost_worker(settings, worker_id):
    """A worker row whose heartbeat stopped two minutes ago."""
    from datetime import timedelta

    from framepress.service.db import Worker, connect, utcnow
    db = connect(settings)
    try:
        with db.session() as s:
            s.add(Worker(id=worker_id, hostname="h", pid=1, version="0", hardware={}, state="idle",
                         started_at=utcnow(), heartbeat_at=utcnow() - timedelta(seconds=120)))
    finally:
        db.dispose()
    return worker_id


def _worker_state(settings, worker_id):
    from framepress.service.db import Worker, connect
    db = connect(settings)
    try:
        with db.session() as s:
            return s.get(Worker, worker_id).state
    finally:
        db.dispose()


@pytest.mark.timeout(60)
def test_the_reaper_command_serves_its_series(tmp_path):
    """The lost-worker and backlog alerts read series the reaper sets: `framepress reaper` serves
    them on its metrics port (the reaper pod's `metrics` port, scraped by the PodMonitor), every
    series at 0 from the start."""
    port = free_port()
    env = embedded_env(tmp_path, FRAMEPRESS_METRICS_PORT=str(port), FRAMEPRESS_WORKER_TIMEOUT="30")
    settings = Settings.from_env(env)
    url = f"http://127.0.0.1:{port}/metrics"
    reaper = subprocess.Popen([FRAMEPRESS, "reaper", "--interval", "0.2"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        fresh = wait_for(lambda: _scrape_or_none(url), 30, "the reaper's /metrics", 0.1)
        assert value(fresh, "framepress_workers_lost_total") == 0
        assert value(fresh, "framepress_queue_oldest_task_age_seconds") == 0
        assert {dict(k)["outcome"] for k in fresh["framepress_tasks_total"]} == set(metrics.TASK_OUTCOMES)
        _ghost_worker(settings, "ghost")
        wait_for(lambda: value(_scrape_or_none(url) or {}, "framepress_workers_lost_total") == 1, 30,
                 "the lost worker on the reaper's /metrics", 0.1)
        assert _worker_state(settings, "ghost") == "lost"
    finally:
        reaper.terminate()
        assert reaper.wait(timeout=20) == 0


@pytest.mark.timeout(60)
def test_a_reaper_whose_metrics_port_is_taken_still_reaps(tmp_path):
    taken = socket.socket()
    taken.bind(("", 0))
    taken.listen()
    try:
        env = embedded_env(tmp_path, FRAMEPRESS_METRICS_PORT=str(taken.getsockname()[1]),
                           FRAMEPRESS_WORKER_TIMEOUT="30")
        settings = Settings.from_env(env)
        _ghost_worker(settings, "ghost")
        reaper = subprocess.Popen([FRAMEPRESS, "reaper", "--interval", "0.2"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            wait_for(lambda: _worker_state(settings, "ghost") == "lost", 30, "the ghost declared lost", 0.1)
        finally:
            reaper.terminate()
            out, _ = reaper.communicate(timeout=20)
        assert reaper.returncode == 0, out
        assert "reaper metrics not served" in out and "Address already in use" in out
    finally:
        taken.close()


def _scrape_or_none(url):
    try:
        return scrape(url, timeout=2)
    except OSError:
        return None
