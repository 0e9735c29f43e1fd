"""Which stretches of a source the per-title analysis encodes.

A few short stretches spread evenly over the source stand for the whole: the analysis costs a
small, bounded share of the transcode however long the source is, and the same duration always
gives the same stretches (a deterministic decision). A short source is analysed whole.
"""
from __future__ import annotations

STRETCH_SECONDS = 1.0      # each sampled stretch
MAX_STRETCHES = 6          # whatever the length: the analysis cost stays bounded
SECONDS_PER_STRETCH = 20.0  # one stretch per this much source, at least two
WHOLE_BELOW_SECONDS = 4.0  # shorter sources are analysed whole


def stretches(duration: float) -> list[tuple[float, float]]:
    """(start, end) seconds of each stretch to analyse, in order; one (0, duration) for a short
    source. A duration that is unknown (0 or less) is analysed whole."""
    if duration <= WHOLE_BELOW_SECONDS:
        return [(0.0, max(duration, 0.0))]
    count = min(MAX_STRETCHES, max(2, round(duration / SECONDS_PER_STRETCH)))
    spans = []
    for i in range(count):
        centre = duration * (i + 0.5) / count
        start = round(max(0.0, centre - STRETCH_SECONDS / 2), 3)
        spans.append((start, round(min(duration, start + STRETCH_SECONDS), 3)))
    return spans


__all__ = ["stretches", "STRETCH_SECONDS"]
