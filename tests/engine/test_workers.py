"""How rungs share worker threads: one per rung while there are cores, then packed by pixels."""
from __future__ import annotations

import pytest

from framepress import _engine, load_ladder
from framepress.engine import _native_config


def workers(cores: int, ladder: str = "default", size=(1920, 1080)) -> list[list[str]]:
    return _engine.workers(_native_config(load_ladder(ladder), False, "cpu", 0), *size, cores)


def test_two_cores_pair_the_largest_rung_against_the_rest():
    # 1080p has 2.07 Mpx; 720p + 480p + 360p have 1.56 Mpx: about equal work for each core.
    assert workers(2) == [["1080p"], ["720p", "480p", "360p"]]


@pytest.mark.parametrize("cores, expected", [
    (1, [["1080p", "720p", "480p", "360p"]]),
    (3, [["1080p"], ["720p"], ["480p", "360p"]]),
    (4, [["1080p"], ["720p"], ["480p"], ["360p"]]),
    (16, [["1080p"], ["720p"], ["480p"], ["360p"]]),
])
def test_one_worker_per_rung_while_there_are_cores(cores, expected):
    assert workers(cores) == expected


def test_every_rung_encoded_once_and_only_rungs_of_the_plan():
    # A 720p source skips the 1080p rung; the others are spread over the workers exactly once.
    groups = workers(2, size=(1280, 720))
    assert sorted(name for g in groups for name in g) == ["360p", "480p", "720p"]
    assert groups == [["720p"], ["480p", "360p"]]
