"""Which sources are split, and into which chunks (framepress.service.split.plan)."""
from __future__ import annotations

import pytest

from framepress.service.split.plan import SplitRule, chunk_ranges


@pytest.mark.parametrize("duration,chunk,segment,gop,expected", [
    (12, 4, 2, 1, [(0, 4), (4, 8), (8, None)]),
    # a last piece shorter than a segment joins the chunk before it
    (13, 4, 2, 1, [(0, 4), (4, 8), (8, None)]),
    (14.5, 4, 2, 1, [(0, 4), (4, 8), (8, 12), (12, None)]),
    # whole segments: 30 s of 4 s segments is at most 32 s, the 30 segments shared out evenly
    (120, 30, 4, 2, [(0, 32), (32, 64), (64, 92), (92, None)]),
    (121, 30, 4, 2, [(0, 32), (32, 64), (64, 92), (92, None)]),
    (134, 30, 4, 2, [(0, 28), (28, 56), (56, 84), (84, 108), (108, None)]),
    # whole segments that are whole GOPs too: 3 s segments, 2 s GOPs -> 6 s steps
    (20, 5, 3, 2, [(0, 6), (6, 12), (12, None)]),
    # shorter than one chunk: one range, the whole source
    (5, 30, 4, 2, [(0, None)]),
])
def test_chunks_are_whole_segments_from_the_start(duration, chunk, segment, gop, expected):
    assert chunk_ranges(duration, chunk, segment, gop) == expected


def test_what_is_split():
    rule = SplitRule(split_seconds=60, chunk_seconds=20)
    assert rule.why_not(61) is None
    assert "not longer than 60" in rule.why_not(60)
    assert SplitRule().why_not(600) == "splitting is off"


def test_a_tasks_options_override_the_workers_rule():
    rule = SplitRule(split_seconds=60, chunk_seconds=20, queue="q")
    assert rule.for_task({"split_seconds": 0}).why_not(600) == "splitting is off"
    assert rule.for_task({"split_seconds": 10, "chunk_seconds": 5}) == SplitRule(10, 5, "q")
    assert rule.for_task({}) == rule
