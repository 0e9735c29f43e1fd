"""Ladder and Rung: the adaptive-bitrate ladder a task is transcoded to.

A ladder comes from a built-in name (`default`, `reference`, `auto`), a path to a JSON file, a dict
of the same form, or a `Ladder` object. A ladder with `per_title` set (the built-in `auto` is one)
is a template: before encoding, `framepress.pertitle` chooses each rung's bitrate from the content
within the rung's `min_bitrate`..`max_bitrate`. Validation happens here, before any work, so an invalid ladder is
refused at submit time rather than failing inside a worker.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Union

from framepress.errors import LadderError

CODECS = ("h264", "hevc", "av1")
BUILTIN_LADDERS = ("default", "reference", "auto")


@dataclass(frozen=True)
class Rung:
    name: str
    height: int
    codec: str = "h264"
    bitrate: int = 0          # bits/s; 0 with `crf` set means constant quality
    crf: int | None = None
    preset: str = "veryfast"
    profile: str = ""
    maxrate: int = 0          # 0: derived from bitrate
    bufsize: int = 0          # 0: derived from bitrate
    min_bitrate: int = 0      # per-title limits; 0: none below, the rung's own bitrate above
    max_bitrate: int = 0

    def validate(self) -> None:
        if not self.name or not all(c.isalnum() or c in "-_." for c in self.name):
            raise LadderError(f"rung name {self.name!r} must be non-empty letters, digits, '-', '_' or '.'")
        if not isinstance(self.height, int) or not 16 <= self.height <= 8640:
            raise LadderError(f"rung {self.name}: height {self.height!r} must be an integer in 16..8640")
        if self.codec not in CODECS:
            raise LadderError(f"rung {self.name}: codec {self.codec!r} is not one of {', '.join(CODECS)}")
        if self.crf is None and (not isinstance(self.bitrate, int) or self.bitrate <= 0):
            raise LadderError(f"rung {self.name}: needs a positive bitrate or a crf")
        if self.crf is not None and not 0 <= self.crf <= 63:
            raise LadderError(f"rung {self.name}: crf {self.crf} must be in 0..63")
        if self.min_bitrate < 0 or self.max_bitrate < 0:
            raise LadderError(f"rung {self.name}: min_bitrate and max_bitrate cannot be negative")
        if self.max_bitrate and self.min_bitrate > self.max_bitrate:
            raise LadderError(f"rung {self.name}: min_bitrate {self.min_bitrate} is above "
                              f"max_bitrate {self.max_bitrate}")


AUDIO_TRACK_POLICIES = ("all", "first")


@dataclass(frozen=True)
class AudioSpec:
    codec: str = "aac"
    bitrate: int = 128000       # per track
    # Which source audio streams are kept: "all", "first" (FFmpeg's best), or language tags
    # (ISO 639-2, e.g. ["eng", "fra"]; the best stream when none matches).
    tracks: Union[str, tuple[str, ...]] = "all"

    def validate(self) -> None:
        if self.codec != "aac" or not isinstance(self.bitrate, int) or self.bitrate <= 0:
            raise LadderError("audio must be aac with a positive bitrate")
        if isinstance(self.tracks, str):
            if self.tracks not in AUDIO_TRACK_POLICIES:
                raise LadderError(f"audio tracks must be all, first or a list of languages, not {self.tracks!r}")
        elif not self.tracks or not all(isinstance(t, str) and t.isalpha() and 2 <= len(t) <= 3
                                        for t in self.tracks):
            raise LadderError(f"audio tracks {list(self.tracks)!r} must be language tags such as eng or fra")


@dataclass(frozen=True)
class Ladder:
    name: str
    rungs: tuple[Rung, ...]
    gop_seconds: float = 2.0
    segment_seconds: float = 4.0
    audio: AudioSpec = field(default_factory=AudioSpec)
    per_title: bool = False   # choose the bitrates from the content before encoding

    def validate(self) -> "Ladder":
        if not self.rungs:
            raise LadderError(f"ladder {self.name!r} has no rungs")
        names = [r.name for r in self.rungs]
        if len(set(names)) != len(names):
            raise LadderError(f"ladder {self.name!r} has duplicate rung names")
        for r in self.rungs:
            r.validate()
        if not 0.1 <= self.gop_seconds <= 20:
            raise LadderError("gop_seconds must be in 0.1..20")
        if self.segment_seconds < self.gop_seconds:
            raise LadderError("segment_seconds must be at least gop_seconds")
        self.audio.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if not self.per_title:
            del d["per_title"]
        d["rungs"] = [{k: v for k, v in asdict(r).items() if v not in (None, "", 0) or k == "height"}
                      for r in self.rungs]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Ladder":
        if not isinstance(data, dict):
            raise LadderError("a ladder must be a JSON object")
        try:
            rungs = tuple(Rung(**r) for r in data["rungs"])
            audio_data = dict(data.get("audio", {}))
            if isinstance(audio_data.get("tracks"), list):
                audio_data["tracks"] = tuple(audio_data["tracks"])
            audio = AudioSpec(**audio_data)
            return cls(name=str(data.get("name", "custom")), rungs=rungs,
                       gop_seconds=float(data.get("gop_seconds", 2.0)),
                       segment_seconds=float(data.get("segment_seconds", 4.0)),
                       audio=audio, per_title=bool(data.get("per_title", False))).validate()
        except LadderError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise LadderError(f"invalid ladder: {exc}") from None


LadderLike = Union[str, Path, dict, Ladder]


def load_ladder(spec: LadderLike) -> Ladder:
    """A built-in name, a JSON file path, a JSON string, a dict or a Ladder -> a validated Ladder."""
    if isinstance(spec, Ladder):
        return spec.validate()
    if isinstance(spec, dict):
        return Ladder.from_dict(spec)
    text = str(spec)
    if text in BUILTIN_LADDERS:
        raw = resources.files("framepress").joinpath("ladders", f"{text}.json").read_text()
        return Ladder.from_dict(json.loads(raw))
    if text.lstrip().startswith("{"):
        try:
            return Ladder.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise LadderError(f"ladder JSON does not parse: {exc}") from None
    path = Path(text)
    if not path.is_file():
        raise LadderError(f"ladder {text!r} is neither a built-in ({', '.join(BUILTIN_LADDERS)}) nor a file")
    try:
        return Ladder.from_dict(json.loads(path.read_text()))
    except json.JSONDecodeError as exc:
        raise LadderError(f"ladder file {path} does not parse: {exc}") from None
