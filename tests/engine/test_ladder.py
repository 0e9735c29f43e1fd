"""Ladder types, built-ins and files."""
from __future__ import annotations

import json

import pytest

from framepress import Ladder, Rung, load_ladder
from framepress.errors import LadderError


def test_builtins():
    default = load_ladder("default")
    assert [r.height for r in default.rungs] == [1080, 720, 480, 360]
    assert default.gop_seconds == 2 and default.segment_seconds == 4 and default.audio.bitrate == 128000
    assert load_ladder("reference").name == "reference"


def test_file_and_dict_round_trip(tmp_path):
    ladder = Ladder(name="mine", rungs=(Rung("a", 240, bitrate=300_000), Rung("b", 144, codec="hevc", crf=30)))
    path = tmp_path / "l.json"
    path.write_text(ladder.to_json())
    assert load_ladder(path) == ladder == load_ladder(json.loads(ladder.to_json()))


@pytest.mark.parametrize("data,match", [
    ({"rungs": [{"name": "a", "height": 240, "bitrate": 1}, {"name": "a", "height": 120, "bitrate": 1}]}, "duplicate"),
    ({"rungs": [{"name": "a/b", "height": 240, "bitrate": 1}]}, "name"),
    ({"rungs": [{"name": "a", "height": 240, "bitrate": 1, "bogus": 1}]}, "invalid ladder"),
    ({"gop_seconds": 4, "segment_seconds": 2, "rungs": [{"name": "a", "height": 240, "bitrate": 1}]}, "segment"),
])
def test_invalid(data, match):
    with pytest.raises(LadderError, match=match):
        load_ladder(data)
