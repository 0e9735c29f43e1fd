"""Prometheus metrics of a worker. The worker calls these functions; the HTTP server exposes them.

Interface used by the worker (keep it stable):
    task_started(), task_finished(outcome, seconds), stage_observed(stage, seconds),
    transcode_fps(fps), retry_scheduled(), escalated(), set_draining(bool),
    start_server(port, health, ready)
and, for the reaper, worker_lost() and queue_oldest_age(seconds).

Every label value known in advance (task outcomes, pipeline stages) has its series from the
start, at 0: `rate()` and `increase()` need a sample before the first event, or an alert on the
first escalation of a worker's life never fires.

Machine utilization (CPU of the container's quota, GPUs through NVML) is sampled when scraped, by a
collector that `start_server` registers, so importing this module never touches NVML.
"""
from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from framepress.service.outcomes import TASK_OUTCOMES  # how an attempt ended, one label each
from framepress.scaling.sysmetrics import CpuSampler, GpuSampler

log = logging.getLogger(__name__)
disable_created_metrics()  # "_created" series double the scrape for no use here

# The stages a task's run times (pipeline.TaskRun.seconds).
STAGES = ("details", "pull", "transcode", "upload")

TASKS = Counter("framepress_tasks_total", "Tasks finished, by outcome", ["outcome"])
TASKS_IN_PROGRESS = Gauge("framepress_tasks_in_progress", "Tasks being worked on now")
TASK_SECONDS = Histogram("framepress_task_duration_seconds", "Whole task wall time",
                         buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600))
STAGE_SECONDS = Histogram("framepress_stage_duration_seconds", "Time per task stage", ["stage"],
                          buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800))
TRANSCODE_FPS = Gauge("framepress_transcode_fps", "Decoded frames per second of the last transcode")
RETRIES = Counter("framepress_retries_total", "Retries scheduled")
ESCALATIONS = Counter("framepress_escalations_total", "Tasks escalated")
DRAINING = Gauge("framepress_worker_draining", "1 while the worker drains (takes no new work)")
WORKERS_LOST = Counter("framepress_workers_lost_total", "Workers the reaper declared lost")
QUEUE_OLDEST_AGE = Gauge("framepress_queue_oldest_task_age_seconds",
                         "Age of the oldest queued task (set by the reaper)")

for _outcome in TASK_OUTCOMES:
    TASKS.labels(outcome=_outcome)
for _stage in STAGES:
    STAGE_SECONDS.labels(stage=_stage)

HealthCheck = Callable[[], "tuple[bool, str]"]


def task_started() -> None:
    TASKS_IN_PROGRESS.inc()


def task_finished(outcome: str, seconds: float) -> None:
    if outcome not in TASK_OUTCOMES:  # still counted; add it to TASK_OUTCOMES for its 0 series
        log.warning("task outcome %r is not in metrics.TASK_OUTCOMES", outcome)
    TASKS_IN_PROGRESS.dec()
    TASKS.labels(outcome=outcome).inc()
    TASK_SECONDS.observe(seconds)


def stage_observed(stage: str, seconds: float) -> None:
    STAGE_SECONDS.labels(stage=stage).observe(seconds)


def transcode_fps(fps: float) -> None:
    TRANSCODE_FPS.set(fps)


def retry_scheduled() -> None:
    RETRIES.inc()


def escalated() -> None:
    ESCALATIONS.inc()


_draining = False


def set_draining(draining: bool) -> None:
    global _draining
    _draining = draining
    DRAINING.set(1 if draining else 0)


def worker_lost() -> None:
    WORKERS_LOST.inc()


def queue_oldest_age(seconds: float) -> None:
    QUEUE_OLDEST_AGE.set(seconds)


class SystemCollector:
    """CPU and GPU utilization, sampled at scrape time (CPU as a rate since the previous scrape)."""

    def __init__(self, cpu: CpuSampler | None = None, gpu: GpuSampler | None = None):
        self._cpu = cpu or CpuSampler()
        self._gpu = gpu or GpuSampler()
        self._lock = threading.Lock()  # concurrent scrapes must not split one CPU interval

    def describe(self) -> list[Metric]:
        return []  # keeps registration from sampling

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            cpu = self._cpu.sample()
            gpus = self._gpu.sample()
        yield GaugeMetricFamily("framepress_cpu_utilization_ratio",
                                f"CPU busy fraction of {self._cpu.source} capacity", value=cpu)
        yield GaugeMetricFamily("framepress_cpu_limit_cores", "CPU capacity the utilization is measured against",
                                value=self._cpu.limit_cores)
        yield GaugeMetricFamily("framepress_gpus", "GPUs visible through NVML", value=len(gpus))
        if not gpus:
            return
        per_gpu = [
            ("framepress_gpu_utilization_ratio", "GPU busy fraction (SM)", "utilization"),
            ("framepress_gpu_encoder_utilization_ratio", "NVENC busy fraction", "encoder_utilization"),
            ("framepress_gpu_decoder_utilization_ratio", "NVDEC busy fraction", "decoder_utilization"),
            ("framepress_gpu_memory_used_bytes", "GPU memory in use", "memory_used_bytes"),
            ("framepress_gpu_memory_total_bytes", "GPU memory size", "memory_total_bytes"),
        ]
        for name, doc, field in per_gpu:
            family = GaugeMetricFamily(name, doc, labels=["gpu"])
            for g in gpus:
                value = getattr(g, field)
                if value is not None:  # unsupported on this board: no series rather than a fake 0
                    family.add_metric([str(g.index)], value)
            yield family
        info = GaugeMetricFamily("framepress_gpu_info", "GPU identity", labels=["gpu", "name", "uuid"])
        for g in gpus:
            info.add_metric([str(g.index), g.name, g.uuid], 1)
        yield info


_system_collector_registered = False
_register_lock = threading.Lock()


def register_system_collector(registry: CollectorRegistry = REGISTRY, collector: SystemCollector | None = None) -> None:
    """Add CPU/GPU series to `registry` once per process."""
    global _system_collector_registered
    with _register_lock:
        if _system_collector_registered and registry is REGISTRY:
            return
        registry.register(collector or SystemCollector())
        if registry is REGISTRY:
            _system_collector_registered = True


def _check(probe: HealthCheck) -> tuple[bool, str]:
    try:
        ok, reason = probe()
        return bool(ok), str(reason)
    except Exception as exc:  # a failing probe is an unhealthy answer, not a 500 with a traceback
        return False, f"check raised {type(exc).__name__}: {exc}"


def _handler(health: HealthCheck, ready: HealthCheck, registry: CollectorRegistry) -> type:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                self._send(200, encoder(registry), content_type)
            elif path == "/healthz":
                self._probe(*_check(health))
            elif path == "/readyz":
                ok, reason = _check(ready)
                if _draining:  # draining is never ready, whatever the worker's check says
                    ok, reason = False, "draining"
                self._probe(ok, reason)
            else:
                self._send(404, b"not found\n", "text/plain")

        def _probe(self, ok: bool, reason: str) -> None:
            body = (reason or ("ok" if ok else "unhealthy")) + "\n"
            self._send(200 if ok else 503, body.encode(), "text/plain; charset=utf-8")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # probes every few seconds would flood the worker's log

    return Handler


def start_server(port: int, health: HealthCheck, ready: HealthCheck, *, addr: str = "",
                 registry: CollectorRegistry = REGISTRY,
                 system_collector: SystemCollector | None = None) -> ThreadingHTTPServer:
    """Serve /metrics, /healthz and /readyz on `port` (0: any free port) from a daemon thread.

    Returns the server: `server.server_address[1]` is the bound port, `server.shutdown()` stops it.
    """
    register_system_collector(registry, system_collector)
    server = ThreadingHTTPServer((addr, port), _handler(health, ready, registry))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    log.info("metrics, /healthz and /readyz on port %d", server.server_address[1])
    return server
