"""Preview thumbnails: the engine's poster and sprite sheets, and the WebVTT that players' preview
bars read (each cue names a sprite and the tile's rectangle with a `#xywh=` media fragment)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_INTERVAL_S = 10.0
VTT_NAME = "thumbnails.vtt"


@dataclass
class Thumbnails:
    poster: str
    sprites: list[str]
    vtt: str
    tile_width: int
    tile_height: int
    columns: int
    rows: int
    times: list[float] = field(default_factory=list)   # each tile's start, seconds


def native_options(interval: float) -> dict[str, Any]:
    return {"interval": float(interval), "tile_width": 160, "columns": 5, "rows": 5, "poster_width": 640}


def _timestamp(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def write_vtt(thumbs_dir: Path, raw: dict[str, Any]) -> Path:
    """`thumbs_dir/thumbnails.vtt` from the engine's description of the sprites it wrote."""
    per_sheet = raw["columns"] * raw["rows"]
    w, h = raw["tile_width"], raw["tile_height"]
    times = raw["times"]
    lines = ["WEBVTT", ""]
    for k, start in enumerate(times):
        end = times[k + 1] if k + 1 < len(times) else max(raw["end"], start + 0.001)
        sheet, tile = divmod(k, per_sheet)
        x, y = tile % raw["columns"] * w, tile // raw["columns"] * h
        lines += [f"{_timestamp(start)} --> {_timestamp(end)}",
                  f"{Path(raw['sprites'][sheet]).name}#xywh={x},{y},{w},{h}", ""]
    path = thumbs_dir / VTT_NAME
    path.write_text("\n".join(lines))
    return path
