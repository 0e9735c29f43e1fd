"""The per-title bench's sources: easy and hard content generated with FFmpeg's lavfi, each
encoded at a mezzanine's quality (x264 CRF 14, at most 20 Mb/s) so the ladders' losses are what
the PSNR measures.

- slides: still pictures (a test card with a counter) that change every 3 s, held in between.
- flat-animation: flat-coloured moving graphics (testsrc2 without noise).
- film-grain: the same graphics under strong temporal grain, as DESIGN §5's reference but heavier.
- high-motion: a detailed pattern turning fast, so every pixel moves every frame.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ContentSource:
    name: str
    kind: str          # "easy" | "hard" | "yours"
    graph: str         # lavfi video graph; {w} {h} {fps} {d} filled in

    def file_name(self, width: int, height: int, fps: int, seconds: float) -> str:
        return f"{self.name}-{width}x{height}-{fps}fps-{seconds:g}s.mp4"


SOURCES = (
    ContentSource("slides", "easy", "testsrc=size={w}x{h}:rate=1/3:duration={d},fps={fps},trim=duration={d}"),
    ContentSource("flat-animation", "easy", "testsrc2=size={w}x{h}:rate={fps}:duration={d}"),
    ContentSource("film-grain", "hard", "testsrc2=size={w}x{h}:rate={fps}:duration={d},noise=alls=20:allf=t+u"),
    ContentSource("high-motion", "hard", "testsrc2=size={w}x{h}:rate={fps}:duration={d},"
                                         "rotate=a=2*t:fillcolor=gray"),
)


def make(ffmpeg: str, source: ContentSource, directory: Path, *, width: int, height: int, fps: int,
         seconds: float) -> Path:
    """The clip under `directory`, generated once and reused (its name says how it was made)."""
    out = directory / source.file_name(width, height, fps, seconds)
    if out.is_file():
        return out
    directory.mkdir(parents=True, exist_ok=True)
    graph = source.graph.format(w=width, h=height, fps=fps, d=f"{seconds:g}")
    partial = out.with_suffix(".partial.mp4")
    subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi",
                    "-i", graph, "-frames:v", str(round(fps * seconds)), "-c:v", "libx264",
                    "-preset", "fast", "-crf", "14", "-maxrate", "20M", "-bufsize", "40M", "-pix_fmt", "yuv420p", "-g", str(2 * fps),
                    str(partial)], check=True)
    partial.replace(out)
    return out


__all__ = ["ContentSource", "SOURCES", "make"]
