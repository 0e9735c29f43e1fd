"""Prometheus metrics of a worker. The worker calls these functions; the HTTP server exposes them.

Interface used by the worker (keep it stable):
    task_started(), task_finished(outcome, seconds), stage_observed(stage, seconds),
    transcode_fps(fps), retry_scheduled(), escalated(), set_draining(bool),
    start_server(port, health, ready)
"""
from __future__ import annotations

from typing import Callable

from prometheus_client import Counter, Gauge, Histogram

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

HealthCheck = Callable[[], "tuple[bool, str]"]


def task_started() -> None:
    TASKS_IN_PROGRESS.inc()


def task_finished(outcome: str, seconds: float) -> None:
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


def set_draining(draining: bool) -> None:
    DRAINING.set(1 if draining else 0)


def start_server(port: int, health: HealthCheck, ready: HealthCheck) -> None:
    """Serve /metrics, /healthz and /readyz on `port` from a daemon thread."""
    raise NotImplementedError("metrics HTTP server: see issue 5")
