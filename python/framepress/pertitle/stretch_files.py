"""Stretches of a source as small files of their own, for the trial encodes.

The engine reads a source from its start, so a sampled stretch is first copied out (packets
copied, nothing decoded: milliseconds) by the FFmpeg command line, from the keyframe at or
before the stretch's start, video only. The source is opened with the demuxer the engine's probe
found and the `file` protocol alone, so a file posing as media cannot make FFmpeg read others.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

TIMEOUT_S = 60


class StretchError(RuntimeError):
    """A stretch could not be copied out; the analysis then encodes the whole source."""


def copy_stretch(source: str, start: float, end: float, dest: Path, demuxer: str) -> Path:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise StretchError("the ffmpeg command is not installed")
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
           "-protocol_whitelist", "file", "-f", demuxer.split(",")[0], "-ss", f"{start:.3f}",
           "-i", source, "-t", f"{end - start:.3f}", "-map", "0:v:0", "-c", "copy",
           "-f", "matroska", str(dest)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise StretchError(f"copying {start:g}-{end:g} s took over {TIMEOUT_S} s") from None
    if proc.returncode != 0 or not dest.is_file() or dest.stat().st_size == 0:
        raise StretchError(f"copying {start:g}-{end:g} s failed: "
                           f"{proc.stderr.strip().splitlines()[-1:] or ['no output']}")
    return dest


__all__ = ["copy_stretch", "StretchError"]
