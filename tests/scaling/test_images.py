"""Dockerfile and Dockerfile.gpu (no docker engine here): the runtime stages ship the FFmpeg
libraries the built engine links against, and the GPU image is set up for the NVIDIA runtime."""
import re
import subprocess
from pathlib import Path

import pytest

from framepress.engine import _engine

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parents[2]


def stages(dockerfile):
    """[(FROM line, body)] per build stage."""
    text = (ROOT / dockerfile).read_text()
    parts = re.split(r"^FROM ", text, flags=re.M)[1:]
    return [("FROM " + p.splitlines()[0], p) for p in parts]


def apt_packages(body):
    return set(re.findall(r"\b(lib(?:av|sw)\w+?\d+)\b", body))


def ffmpeg_sonames():
    """libavcodec.so.59 -> libavcodec59: the Debian package names of what the engine needs."""
    out = subprocess.run(["ldd", _engine.__file__], capture_output=True, text=True, check=True).stdout
    return {f"{m[0]}{m[1]}" for m in re.findall(r"\b(lib(?:av|sw)\w+)\.so\.(\d+)", out)}


def test_cpu_image_runtime_has_the_libraries_the_engine_links():
    build, runtime = stages("Dockerfile")
    assert "AS build" in build[0] and "bookworm" in build[0] and "bookworm" in runtime[0]
    assert "libavcodec-dev" in build[1] and "pip wheel" in build[1]
    assert "COPY --from=build" in runtime[1]
    if "bookworm" not in Path("/etc/os-release").read_text():
        pytest.skip("the library versions are checked on the image's own distribution (Debian 12)")
    needed = ffmpeg_sonames()
    assert {"libavcodec59", "libavformat59", "libavutil57"} <= needed
    assert needed <= apt_packages(runtime[1]), needed - apt_packages(runtime[1])


def test_gpu_image_is_for_the_nvidia_runtime():
    build, runtime = stages("Dockerfile.gpu")
    text = (ROOT / "Dockerfile.gpu").read_text()
    base = re.search(r"^ARG CUDA_IMAGE=(\S+)", text, re.M).group(1)
    assert base.startswith("nvidia/cuda:") and "ubuntu24.04" in base
    assert "ubuntu:24.04" in build[0] and "${CUDA_IMAGE}" in runtime[0]  # one distro: python and FFmpeg match
    caps = re.search(r"NVIDIA_DRIVER_CAPABILITIES=(\S+)", runtime[1]).group(1).split(",")
    assert {"compute", "video", "utility"} <= set(caps)  # video: libnvcuvid and libnvidia-encode
    # Ubuntu 24.04 ships FFmpeg 6.1: the sonames of its libraries, all six the engine uses.
    assert apt_packages(runtime[1]) == {"libavformat60", "libavcodec60", "libavfilter9", "libswscale7",
                                        "libswresample4", "libavutil58"}


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.gpu"])
def test_images_run_the_worker_unprivileged(dockerfile):
    text = (ROOT / dockerfile).read_text()
    assert re.search(r'^ENTRYPOINT \["framepress"\]$', text, re.M)  # exec form: the worker gets SIGTERM
    assert re.search(r'^CMD \["worker"\]$', text, re.M)
    assert re.search(r"^USER 10001", text, re.M)
    assert "EXPOSE 9100" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored
