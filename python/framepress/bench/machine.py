"""What the figures were measured on: CPU, cores, memory, GPU, and the versions of the tools."""
from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from pathlib import Path
from typing import Optional

import psutil

X264_SEI = re.compile(rb"x264 - core (\d+)(?: (r\d+ [0-9a-f]+))?")
X265_SEI = re.compile(rb"x265 \(build (\d+)\) - ([0-9][0-9A-Za-z.+_-]*)")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_names() -> list[str]:
    """NVIDIA GPUs through NVML when present; an empty list otherwise."""
    try:
        import pynvml
        pynvml.nvmlInit()
        try:
            names = []
            for i in range(pynvml.nvmlDeviceGetCount()):
                name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i))
                names.append(name.decode() if isinstance(name, bytes) else name)
            return names
        finally:
            pynvml.nvmlShutdown()
    except Exception:      # no library, no driver, no device: all mean "no GPU"
        return []


def ffmpeg_version(ffmpeg: Optional[str]) -> str:
    if not ffmpeg:
        return "not available"
    try:
        first = subprocess.run([ffmpeg, "-hide_banner", "-version"], capture_output=True, text=True,
                               timeout=30).stdout.splitlines()[0]
        return first.replace("ffmpeg version ", "").split(" Copyright")[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown"


def encoder_version(encoded: str | Path) -> str:
    """x264 and x265 write their versions into an SEI message of every stream they encode."""
    try:
        with open(encoded, "rb") as f:
            head = f.read(1 << 20)
    except OSError:
        return "unknown"
    if m := X264_SEI.search(head):
        return f"x264 core {m.group(1).decode()}" + (f" {m.group(2).decode()}" if m.group(2) else "")
    if m := X265_SEI.search(head):
        return f"x265 {m.group(2).decode()} (build {m.group(1).decode()})"
    return "unknown"


def pyav_version() -> str:
    try:
        import av
        lavc = ".".join(map(str, av.library_versions["libavcodec"]))
        return f"{av.__version__} (libavcodec {lavc})"
    except Exception:
        return "not available"


def engine_ffmpeg() -> str:
    """The FFmpeg libraries the engine links (from pkg-config, as the build found them)."""
    if not shutil.which("pkg-config"):
        return "unknown"
    out = subprocess.run(["pkg-config", "--modversion", "libavcodec"], capture_output=True, text=True)
    return f"libavcodec {out.stdout.strip()}" if out.returncode == 0 else "unknown"


def machine_info() -> dict:
    mem = psutil.virtual_memory().total
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 1,
        "physical_cores": psutil.cpu_count(logical=False) or 0,
        "memory_gib": round(mem / 2**30, 1),
        "gpus": gpu_names(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
