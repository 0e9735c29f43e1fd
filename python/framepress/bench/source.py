"""The benchmark's source clip: DESIGN §5's reference, or a shorter/smaller one for quick runs,
and what the peers need to know about any source (size, rate, frames, audio)."""
from __future__ import annotations

import subprocess
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av


@dataclass(frozen=True)
class SourceSpec:
    """testsrc2 with temporal noise (so the encoder has real work) plus a sine tone."""
    width: int = 1920
    height: int = 1080
    fps: int = 30
    seconds: float = 10.0

    @property
    def file_name(self) -> str:
        return f"reference-{self.width}x{self.height}-{self.fps}fps-{self.seconds:g}s.mp4"


REFERENCE = SourceSpec()
QUICK = SourceSpec(width=1280, height=720, fps=30, seconds=1.0)   # three rungs of the default ladder


def reference_command(ffmpeg: str, spec: SourceSpec, out: Path) -> list[str]:
    """DESIGN §5's command, parametrised only by size, rate and duration."""
    video = (f"testsrc2=size={spec.width}x{spec.height}:rate={spec.fps}:duration={spec.seconds:g},"
             "noise=alls=12:allf=t+u")
    return [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
            "-f", "lavfi", "-i", video, "-f", "lavfi", "-i", f"sine=frequency=440:duration={spec.seconds:g}",
            "-c:v", "libx264", "-preset", "medium", "-b:v", "8M", "-pix_fmt", "yuv420p", "-g", "60",
            "-c:a", "aac", "-b:a", "128k", str(out)]


def make_source(ffmpeg: str, spec: SourceSpec, directory: Path) -> Path:
    """The clip for `spec` under `directory`, generated once and reused (its name says its spec)."""
    out = directory / spec.file_name
    if not out.is_file():
        directory.mkdir(parents=True, exist_ok=True)
        partial = out.with_suffix(".partial.mp4")
        subprocess.run(reference_command(ffmpeg, spec, partial), check=True)
        partial.replace(out)
    return out


@dataclass(frozen=True)
class SourceInfo:
    path: str
    width: int
    height: int
    fps: float
    frames: int
    seconds: float
    codec: str
    pix_fmt: str
    has_audio: bool
    bitrate: int

    def to_dict(self) -> dict:
        return asdict(self)


def probe_source(path: str | Path) -> SourceInfo:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        rate = v.average_rate or v.guessed_rate or Fraction(30)
        seconds = float(c.duration / av.time_base) if c.duration else float(v.duration * v.time_base)
        frames = v.frames or round(seconds * rate)
        return SourceInfo(path=str(path), width=v.codec_context.width, height=v.codec_context.height,
                          fps=float(rate), frames=int(frames), seconds=seconds, codec=v.codec_context.name,
                          pix_fmt=v.codec_context.pix_fmt or "", has_audio=bool(c.streams.audio),
                          bitrate=int(c.bit_rate or 0))
