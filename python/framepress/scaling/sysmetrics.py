"""Machine utilization for metrics and autoscaling: CPU of the container's quota, GPUs through NVML.

CPU is measured as a rate between two samples, so each reader (a Prometheus collector, the local
pool) keeps its own `CpuSampler`. In a cgroup with a CPU quota (a Kubernetes container with a CPU
limit) the utilization is usage / quota, which is what makes a pod look busy to the autoscaler;
without a quota it is the host's.

GPUs are read through nvidia-ml-py. A missing library, driver or GPU means zero GPUs, never an
error. Tests pass a fake `nvml` module object with the same function names.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import psutil

log = logging.getLogger(__name__)

CGROUP_ROOT = "/sys/fs/cgroup"
PROC_SELF_CGROUP = "/proc/self/cgroup"


# ---------------------------------------------------------------- CPU


@dataclass(frozen=True)
class CgroupCpu:
    """Where to read a cgroup's CPU usage, and its quota in cores (None: no quota)."""
    version: int
    usage_file: Path
    limit_cores: float | None

    def usage_seconds(self) -> float:
        text = self.usage_file.read_text()
        if self.version == 2:  # cpu.stat: "usage_usec N"
            for line in text.splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
            raise ValueError(f"no usage_usec in {self.usage_file}")
        return int(text.strip()) / 1e9  # cpuacct.usage is in nanoseconds


def _own_cgroup_paths(proc_self_cgroup: str) -> dict[str, str]:
    """Controller name -> this process's cgroup path ("" is the v2 unified hierarchy)."""
    paths: dict[str, str] = {}
    try:
        lines = Path(proc_self_cgroup).read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(","):
            paths[controller] = parts[2]
    return paths


def _first_existing(root: Path, rel: str, name: str) -> Path | None:
    # Inside a container with its own cgroup namespace the path is "/", but some runtimes show the
    # host's path while mounting only the container's subtree: try the full path, then the root.
    for base in (root / rel.lstrip("/"), root):
        if (base / name).is_file():
            return base / name
    return None


def find_cgroup_cpu(root: str = CGROUP_ROOT, proc_self_cgroup: str = PROC_SELF_CGROUP) -> CgroupCpu | None:
    """The cgroup CPU accounting of this process, v2 first, then v1; None when neither is readable."""
    rootp = Path(root)
    paths = _own_cgroup_paths(proc_self_cgroup)

    if (rootp / "cgroup.controllers").is_file():  # v2 unified hierarchy
        rel = paths.get("", "/")
        stat = _first_existing(rootp, rel, "cpu.stat")
        if stat is not None:
            limit = None
            cpu_max = stat.parent / "cpu.max"
            if cpu_max.is_file():
                quota, period = cpu_max.read_text().split()[:2]  # "max 100000" or "200000 100000"
                limit = None if quota == "max" else int(quota) / int(period)
            return CgroupCpu(2, stat, limit)

    # v1: the cpu and cpuacct controllers are often co-mounted as "cpu,cpuacct".
    for acct_dir in ("cpuacct", "cpu,cpuacct", "cpuacct,cpu"):
        usage = _first_existing(rootp / acct_dir, paths.get("cpuacct", "/"), "cpuacct.usage")
        if usage is not None:
            break
    else:
        return None
    limit = None
    for cpu_dir in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        quota_file = _first_existing(rootp / cpu_dir, paths.get("cpu", "/"), "cpu.cfs_quota_us")
        if quota_file is not None:
            quota = int(quota_file.read_text().strip())
            period = int((quota_file.parent / "cpu.cfs_period_us").read_text().strip())
            limit = quota / period if quota > 0 else None
            break
    return CgroupCpu(1, usage, limit)


class CpuSampler:
    """CPU utilization 0-1 between successive `sample()` calls (the first call measures from creation).

    Of the cgroup's quota when there is one, else of the whole host.
    """

    def __init__(self, root: str = CGROUP_ROOT, proc_self_cgroup: str = PROC_SELF_CGROUP,
                 clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        cgroup = find_cgroup_cpu(root, proc_self_cgroup)
        self._cgroup = cgroup if cgroup is not None and cgroup.limit_cores else None
        self.limit_cores = self._cgroup.limit_cores if self._cgroup else float(psutil.cpu_count() or 1)
        self.source = f"cgroup v{self._cgroup.version} quota" if self._cgroup else "host"
        self._last = self._read()

    def _read(self) -> tuple[float, float]:
        """(busy seconds, total capacity seconds or wall time) at this instant."""
        if self._cgroup:
            return self._cgroup.usage_seconds(), self._clock()
        t = psutil.cpu_times()
        idle = t.idle + getattr(t, "iowait", 0.0)
        total = sum(t)
        return total - idle, total

    def sample(self) -> float:
        now = self._read()
        busy = now[0] - self._last[0]
        span = now[1] - self._last[1]
        self._last = now
        if self._cgroup:
            span *= self.limit_cores
        if span <= 0:
            return 0.0
        # Quota accounting is per period, so a short window can read slightly above 1.
        return min(1.0, max(0.0, busy / span))


# ---------------------------------------------------------------- GPU


@dataclass(frozen=True)
class GpuStats:
    index: int
    name: str
    uuid: str
    utilization: float | None  # 0-1, SM busy time
    encoder_utilization: float | None  # 0-1, NVENC
    decoder_utilization: float | None  # 0-1, NVDEC
    memory_used_bytes: int | None
    memory_total_bytes: int | None

    @property
    def busy(self) -> float:
        """The busiest engine: a hybrid transcode (NVDEC only) can saturate the decoder at low SM use."""
        values = [v for v in (self.utilization, self.encoder_utilization, self.decoder_utilization)
                  if v is not None]
        return max(values, default=0.0)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class GpuSampler:
    """Per-GPU utilization through NVML; `count` is 0 and `sample()` empty when NVML is unusable."""

    def __init__(self, nvml: Any = None):
        self._nvml = None
        self._handles: list[Any] = []
        if nvml is None:
            try:
                import pynvml as nvml  # nvidia-ml-py
            except ImportError:
                return
        try:
            nvml.nvmlInit()
            self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
            self._nvml = nvml
        except Exception as exc:  # no driver, no device, container without the NVIDIA runtime
            log.debug("NVML unavailable, reporting no GPUs: %s", exc)
            self._handles = []

    @property
    def count(self) -> int:
        return len(self._handles)

    def _call(self, fn: str, handle: Any) -> Any:
        try:
            return getattr(self._nvml, fn)(handle)
        except Exception:  # e.g. NVMLError_NotSupported for the encoder on an NVDEC-only board
            return None

    def sample(self) -> list[GpuStats]:
        stats = []
        for index, handle in enumerate(self._handles):
            util = self._call("nvmlDeviceGetUtilizationRates", handle)
            enc = self._call("nvmlDeviceGetEncoderUtilization", handle)  # [percent, period_us]
            dec = self._call("nvmlDeviceGetDecoderUtilization", handle)
            mem = self._call("nvmlDeviceGetMemoryInfo", handle)
            stats.append(GpuStats(
                index=index,
                name=_text(self._call("nvmlDeviceGetName", handle) or ""),
                uuid=_text(self._call("nvmlDeviceGetUUID", handle) or ""),
                utilization=util.gpu / 100 if util is not None else None,
                encoder_utilization=enc[0] / 100 if enc is not None else None,
                decoder_utilization=dec[0] / 100 if dec is not None else None,
                memory_used_bytes=int(mem.used) if mem is not None else None,
                memory_total_bytes=int(mem.total) if mem is not None else None,
            ))
        return stats


def gpu_busy_average(stats: list[GpuStats]) -> float:
    """Mean over GPUs of each one's busiest engine (0 with no GPUs)."""
    return sum(s.busy for s in stats) / len(stats) if stats else 0.0

