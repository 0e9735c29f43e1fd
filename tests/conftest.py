"""Shared test helpers: media generated with FFmpeg's lavfi sources, never committed."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")


def make_clip(path: Path, *, seconds: float = 2.0, size: str = "640x360", rate: int = 30,
              audio: bool = True, vcodec: str = "libx264", pix_fmt: str = "yuv420p",
              extra_video: list[str] | None = None, vf: str = "", extra_out: list[str] | None = None) -> Path:
    """Writes a test clip (testsrc2 pattern, a sine tone) and returns its path."""
    assert FFMPEG, "ffmpeg is required to generate test media (make installs it)"
    video = f"testsrc2=size={size}:rate={rate}:duration={seconds}"
    cmd = [FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i", video]
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    if vf:
        cmd += ["-vf", vf]
    cmd += ["-c:v", vcodec, "-pix_fmt", pix_fmt] + (extra_video or [])
    if vcodec == "libx264":
        cmd += ["-preset", "ultrafast"]
    if audio:
        cmd += ["-c:a", "aac", "-b:a", "96k"]
    cmd += (extra_out or []) + [str(path)]
    subprocess.run(cmd, check=True)
    return path


def ffprobe_json(path: Path | str, *args: str) -> dict:
    assert FFPROBE, "ffprobe is required"
    out = subprocess.run([FFPROBE, "-v", "error", "-of", "json", *args, str(path)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def video_frames(path: Path | str) -> list[dict]:
    """Every decoded video frame's pts_time and key flag, in order."""
    data = ffprobe_json(path, "-select_streams", "v:0", "-show_entries",
                        "frame=pts_time,key_frame,pict_type")
    return data["frames"]


def keyframe_times(path: Path | str) -> list[float]:
    return [round(float(f["pts_time"]), 3) for f in video_frames(path) if int(f["key_frame"]) == 1]


def psnr(rendition: Path | str, source: Path | str) -> float:
    """Average PSNR of a rendition scaled back to the source size (bicubic) against the source."""
    src = ffprobe_json(source, "-select_streams", "v:0", "-show_entries", "stream=width,height")["streams"][0]
    graph = f"[0:v]scale={src['width']}:{src['height']}:flags=bicubic[a];[a][1:v]psnr"
    out = subprocess.run([FFMPEG, "-i", str(rendition), "-i", str(source), "-lavfi", graph, "-f", "null", "-"],
                         capture_output=True, text=True, check=True).stderr
    return float(out.rsplit("average:", 1)[1].split()[0])


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def clip(media_dir) -> Path:
    """2 s of 640x360 30 fps H.264 with AAC audio."""
    return make_clip(media_dir / "clip.mp4")
