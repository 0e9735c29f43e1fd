"""Which stretches of a source the per-title analysis encodes.

A few stretches spread evenly over the source stand for the whole: one per half minute, at most
six, each one GOP of the ladder long (so the trial spends on keyframes what the ladder will), so
the analysis costs a small, bounded share of the transcode however long the source is. The same
duration always gives the same stretches (a deterministic decision). A source that sampling would
not cut by half is analysed whole.
"""
from __future__ import annotations

MAX_STRETCHES = 6
SECONDS_PER_STRETCH = 30.0


def stretches(duration: float, length: float) -> list[tuple[float, float]]:
    """(start, end) seconds of each stretch of `length` seconds to analyse, in order; one
    (0, duration) when the source is analysed whole (also when its duration is unknown)."""
    count = min(MAX_STRETCHES, max(1, round(duration / SECONDS_PER_STRETCH)))
    if duration <= 0 or count * length > duration / 2:
        return [(0.0, max(duration, 0.0))]
    spans = []
    for i in range(count):
        centre = duration * (i + 0.5) / count
        start = round(max(0.0, centre - length / 2), 3)
        spans.append((start, round(min(duration, start + length), 3)))
    return spans


__all__ = ["stretches"]
