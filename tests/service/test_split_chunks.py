"""Chunk tasks in Postgres: made under the parent's lease, counted by it, escalating it."""
from __future__ import annotations

import pytest

from framepress.service.db import Task, TaskStatus, connect
from framepress.service.errors import StorageError
from framepress.service.split import chunks
from framepress.service.split.stitching import outputs_prefix
from framepress.service.tasks import TaskStore

LADDER = {"name": "t", "gop_seconds": 1, "segment_seconds": 2, "audio": {"codec": "aac", "bitrate": 64000},
          "rungs": [{"name": "144p", "height": 144, "codec": "h264", "bitrate": 100000, "preset": "ultrafast"}]}


def split_parent(store: TaskStore):
    parent_id = store.create("s3://b/src.mp4", "s3://b/out", LADDER, max_attempts=2)
    taken = store.take(parent_id, "w1", {})
    plan = [{"start": 0.0, "end": 4.0, "ladder": LADDER, "options": {}},
            {"start": 4.0, "end": None, "ladder": LADDER, "options": {}}]
    ids = chunks.create(store, taken.lease, taken.spec, plan, "q", {"duration": 6.0})
    return parent_id, ids


def test_a_split_parent_waits_for_its_chunks_and_a_copy_of_its_message_is_a_duplicate(settings):
    store = TaskStore(connect(settings))
    parent_id, ids = split_parent(store)
    st = store.status(parent_id)
    assert st["status"] == "running" and st["worker_id"] is None and st["kind"] == "parent"
    assert [c["range"] for c in st["chunks"]] == [[0.0, 4.0], [4.0, None]]
    assert store.take(parent_id, "w2", {}).outcome == "settled"
    assert store.status(ids[0])["parent_id"] == parent_id


def test_a_chunk_out_of_attempts_at_its_take_escalates_its_parent(settings):
    db = connect(settings)
    store = TaskStore(db)
    parent_id, ids = split_parent(store)
    with db.session() as s:
        s.get(Task, ids[0]).attempts = 2                 # delivered again with none left
    assert store.take(ids[0], "w2", {}).outcome == "exhausted"
    st = store.status(parent_id)
    assert st["status"] == TaskStatus.ESCALATED and st["last_error"].startswith("chunk 0 s to 4 s escalated")
    assert [c["status"] for c in st["chunks"]] == ["escalated", "cancelled"]


def test_a_chunk_without_renditions_rows_fails_the_stitch_clearly():
    with pytest.raises(StorageError, match="no renditions rows"):
        outputs_prefix([])
