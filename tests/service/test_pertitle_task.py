"""A task on the per-title ladder `auto`: the chosen bitrates and their reasons on the task's
`transcoded` event and its renditions rows, through the CLI's status JSON too."""
from __future__ import annotations

import json

import pytest

from .conftest import cli, kinds, wait_settled

HAPPY = ["taken", "details_loaded", "pulled", "transcoded", "uploaded", "succeeded"]


@pytest.mark.timeout(120)
def test_a_task_on_ladder_auto_records_the_choice(client, run_worker, source_uris, settings):
    with run_worker():
        task_id = client.submit(source_uris["clip360"], ladder="auto")
        st = wait_settled(client, task_id, timeout=90)
    assert st["status"] == "succeeded", st["last_error"]
    assert kinds(st) == HAPPY
    transcoded = next(e for e in st["events"] if e["kind"] == "transcoded")["data"]
    choice = transcoded["per_title"]
    assert choice["template"] == "auto" and choice["target_crf"] == 23
    kept = {c["name"]: c for c in choice["rungs"] if c["kept"]}
    assert list(kept) == ["360p"]                       # the 640x360 source: the other rungs are above it
    assert 0 < kept["360p"]["bitrate"] == kept["360p"]["needed"] <= 800000
    assert transcoded["engine_seconds"]["analysis"] > 0
    [row] = st["renditions"]
    assert row["name"] == "360p" and row["target_bitrate"] == kept["360p"]["bitrate"]
    assert row["choice"] == kept["360p"]["reason"] and "CRF 23 at 360p" in row["choice"]
    # The same through `framepress status --json`.
    shown = json.loads(cli(settings, "status", task_id, "--json").stdout)
    assert shown["renditions"][0]["target_bitrate"] == row["target_bitrate"]


@pytest.mark.timeout(120)
def test_a_fixed_ladder_records_its_own_bitrates(client, run_worker, source_uris):
    ladder = {"name": "one", "rungs": [{"name": "180p", "height": 180, "bitrate": 250000, "preset": "ultrafast"}]}
    with run_worker():
        st = wait_settled(client, client.submit(source_uris["clip360"], ladder=ladder), timeout=90)
    assert st["status"] == "succeeded", st["last_error"]
    [row] = st["renditions"]
    assert (row["target_bitrate"], row["choice"]) == (250000, None)
    assert "per_title" not in next(e for e in st["events"] if e["kind"] == "transcoded")["data"]
