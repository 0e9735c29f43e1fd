"""Who a worker is: the details in its `workers` row and in every `taken` event."""
from __future__ import annotations

import logging
import os
import socket
from typing import Any

from framepress import __version__

log = logging.getLogger("framepress.worker")


def versions() -> dict[str, Any]:
    out: dict[str, Any] = {"framepress": __version__}
    try:
        from framepress import _engine
        native = getattr(_engine, "versions", None)
        if callable(native):
            out.update({str(k): v for k, v in dict(native()).items()})
    except Exception as exc:  # noqa: BLE001  details are informative; never fail a worker on them
        log.warning("engine versions unavailable: %r", exc)
    out.setdefault("ffmpeg", "unknown")
    return out


def hardware(nvml: Any = None) -> dict[str, Any]:
    """CPUs, memory, what the engine can use on the GPU, and which GPUs NVML sees (`nvml`: tests)."""
    out: dict[str, Any] = {"cpus": os.cpu_count()}
    try:
        import psutil
        out["memory_bytes"] = psutil.virtual_memory().total
    except Exception:  # noqa: BLE001
        pass
    try:
        import framepress
        out["gpu"] = framepress.hw_capabilities()
    except Exception as exc:  # noqa: BLE001
        out["gpu"] = {"error": repr(exc)}
    # Which boards, from NVML (empty without a GPU or a driver).
    from framepress.scaling.sysmetrics import GpuSampler
    out["gpus"] = [{"index": g.index, "name": g.name, "uuid": g.uuid, "memory_bytes": g.memory_total_bytes}
                   for g in GpuSampler(nvml).sample()]
    return out


def worker_details(worker_id: str) -> dict[str, Any]:
    """Pod and node names come from the Downward API env vars the k8s manifests set."""
    v = versions()
    return {"worker_id": worker_id, "hostname": socket.gethostname(),
            "pod": os.environ.get("POD_NAME"), "node": os.environ.get("NODE_NAME"),
            "pid": os.getpid(), "version": v["framepress"], "ffmpeg_version": v.get("ffmpeg"),
            "versions": v, "hardware": hardware()}
