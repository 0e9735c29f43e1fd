"""Whether a task is split, and into which time ranges.

Chunks are a whole number of HLS segments long and start on the source's keyframe grid, so every
chunk edge is a segment edge and the chunks' segments line up into one playlist.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

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

    def why_not(self, duration: float) -> Optional[str]:
        """None when a source of `duration` s is split; else why it is not."""
        if self.split_seconds <= 0:
            return "splitting is off"
        if duration <= self.split_seconds:
            return f"{duration:.1f} s is not longer than {self.split_seconds:g} s"
        return None


def chunk_ranges(duration: float, chunk_seconds: float, segment_seconds: float,
                 gop_seconds: float) -> list[tuple[float, Optional[float]]]:
    """[start, end) ranges covering the source, the last one open (None: to the end). Each is a
    whole number of steps (segments that are whole GOPs too), at most about `chunk_seconds` long;
    a last piece shorter than one segment joins the step before it. The steps are shared out as
    evenly as the count allows, longest first: 120 s of 4 s steps in 30 s chunks is 32, 32, 28,
    28 s, so two workers finish together (32, 32, 32, 24 would leave one idle while the other
    does a third 32)."""
    step = segment_seconds
    for k in range(1, 11):  # the shortest whole number of segments that is also of GOPs
        if abs(k * segment_seconds / gop_seconds - round(k * segment_seconds / gop_seconds)) < 1e-6:
            step = k * segment_seconds
            break
    per_chunk = max(1, round(chunk_seconds / step))
    steps = math.floor(duration / step + 1e-9)
    if duration - steps * step >= segment_seconds:
        steps += 1
    steps = max(1, steps)
    count = math.ceil(steps / per_chunk)
    sizes = [steps // count + (1 if i < steps % count else 0) for i in range(count)]
    starts = [sum(sizes[:i]) * step for i in range(count)]
    return [(start, starts[i + 1] if i < count - 1 else None) for i, start in enumerate(starts)]


__all__ = ["SplitRule", "chunk_ranges", "DEFAULT_CHUNK_SECONDS"]
