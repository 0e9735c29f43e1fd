"""Whether a task is split, and into which time ranges.

Chunks are a whole number of HLS segments long and start on the source's keyframe grid, so every
chunk edge is a segment edge and the chunks' segments line up into one playlist.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

from framepress.service.split.source_ranges import INDEXED_FORMATS

DEFAULT_CHUNK_SECONDS = 30.0


@dataclass(frozen=True)
class SplitRule:
    """`split_seconds`: split sources longer than this (0: never); `chunk_seconds`: about how
    long each chunk is. A task's options (`split_seconds`, `chunk_seconds`) override both."""
    split_seconds: float = 0.0
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS
    queue: str = ""

    def for_task(self, options: dict[str, Any]) -> "SplitRule":
        return SplitRule(float(options.get("split_seconds", self.split_seconds) or 0.0),
                         float(options.get("chunk_seconds", self.chunk_seconds) or DEFAULT_CHUNK_SECONDS),
                         self.queue)

    def why_not(self, duration: float, container: str) -> Optional[str]:
        """None when a source of `duration` s in `container` is split; else why it is not."""
        if self.split_seconds <= 0:
            return "splitting is off"
        if duration <= self.split_seconds:
            return f"{duration:.1f} s is not longer than {self.split_seconds:g} s"
        if container not in INDEXED_FORMATS:
            return f"a {container} source has no sample index to read chunks from"
        return None


def chunk_ranges(duration: float, chunk_seconds: float, segment_seconds: float,
                 gop_seconds: float) -> list[tuple[float, Optional[float]]]:
    """[start, end) ranges covering the source, the last one open (None: to the end). Each is a
    whole number of segments (and GOPs); a last piece shorter than one segment joins the one before."""
    step = segment_seconds
    for k in range(1, 11):  # the shortest whole number of segments that is also of GOPs
        if abs(k * segment_seconds / gop_seconds - round(k * segment_seconds / gop_seconds)) < 1e-6:
            step = k * segment_seconds
            break
    length = max(1, round(chunk_seconds / step)) * step
    count = max(1, math.ceil(duration / length - 1e-9))
    if count > 1 and duration - (count - 1) * length < segment_seconds:
        count -= 1
    return [(i * length, (i + 1) * length if i < count - 1 else None) for i in range(count)]


__all__ = ["SplitRule", "chunk_ranges", "DEFAULT_CHUNK_SECONDS"]
