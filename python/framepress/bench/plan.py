"""The concrete rungs every system encodes: the ladder resolved against the source.

The rules mirror the engine's (DESIGN §2), so peers do exactly the same work: rungs above the
source height are skipped (a source below every rung gets one rung at its own height), widths
keep the aspect ratio rounded to even, maxrate = bitrate and bufsize = 2 × bitrate unless the
rung sets them, and a fixed GOP of `gop_seconds` with no scene-cut keyframes (`encoders` turns
a rung into encoder options).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

from framepress.ladder import Ladder
from framepress.bench.source import SourceInfo


@dataclass(frozen=True)
class RungJob:
    name: str
    width: int
    height: int
    bitrate: int
    maxrate: int
    bufsize: int
    preset: str
    gop: int              # frames between keyframes
    scaled: bool          # False when the rung is the source size (no scaler needed)
    codec: str = "h264"
    crf: Optional[int] = None   # constant quality instead of a bitrate

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    ladder: Ladder
    rungs: tuple[RungJob, ...]
    audio_bitrate: int
    has_audio: bool

    def to_dict(self) -> dict:
        return {"ladder": self.ladder.name, "rungs": [r.to_dict() for r in self.rungs],
                "audio_bitrate": self.audio_bitrate, "has_audio": self.has_audio}


def even_width(src_w: int, src_h: int, height: int) -> int:
    """What FFmpeg's scale=-2:H gives: the aspect-preserving width, rounded to even."""
    return max(2, int(round(src_w * height / src_h / 2.0)) * 2)


def make_plan(ladder: Ladder, source: SourceInfo) -> Plan:
    fitting = [r for r in ladder.rungs if r.height <= source.height]
    if not fitting:   # a small source still gets one rendition, at its own size
        lowest = min(ladder.rungs, key=lambda r: r.height)
        fitting = [type(lowest)(**{**asdict(lowest), "height": source.height - source.height % 2})]
    gop = max(1, round(ladder.gop_seconds * source.fps))
    jobs = []
    for r in fitting:
        scaled = r.height != source.height
        width = even_width(source.width, source.height, r.height) if scaled else source.width
        jobs.append(RungJob(name=r.name, width=width, height=r.height, bitrate=r.bitrate,
                            maxrate=r.maxrate or r.bitrate, bufsize=r.bufsize or 2 * r.bitrate,
                            preset=r.preset, gop=gop, scaled=scaled, codec=r.codec, crf=r.crf))
    return Plan(ladder=ladder, rungs=tuple(jobs), audio_bitrate=ladder.audio.bitrate,
                has_audio=source.has_audio)
