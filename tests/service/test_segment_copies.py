"""Stand-ins for media segments left in the store: their boxes in place, their media data holes."""
from __future__ import annotations

import struct

from framepress.service.split.segment_copies import HEAD_BYTES, write_stand_in
from framepress.service.storage.local import LocalStorage


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def segment(tmp_path, moof_bytes: int):
    """A segment's layout (styp, moof, mdat) with media data that is not zeros; its path and
    where its media data starts."""
    head = box(b"styp", b"msdh" * 4) + box(b"moof", b"m" * moof_bytes)
    data = head + box(b"mdat", bytes(range(1, 256)) * 400)
    path = tmp_path / "seg.m4s"
    path.write_bytes(data)
    return path, len(head) + 8


def test_a_stand_in_has_the_segments_size_and_boxes_read_in_one_go(tmp_path):
    path, media = segment(tmp_path, 3000)
    size = path.stat().st_size
    fetched = write_stand_in(LocalStorage(), path.as_uri(), size, tmp_path / "stand_in.m4s")
    got, data = (tmp_path / "stand_in.m4s").read_bytes(), path.read_bytes()
    assert len(got) == size and got[:media] == data[:media] and got[media:] == bytes(size - media)
    assert fetched == HEAD_BYTES


def test_boxes_beyond_the_first_read_are_read_too(tmp_path):
    path, media = segment(tmp_path, HEAD_BYTES + 5000)
    size = path.stat().st_size
    fetched = write_stand_in(LocalStorage(), path.as_uri(), size, tmp_path / "stand_in.m4s")
    got, data = (tmp_path / "stand_in.m4s").read_bytes(), path.read_bytes()
    assert got[:media] == data[:media] and got[media:] == bytes(size - media)
    # The first read, the media data's header, the rest of the moof: nothing of the media data.
    assert fetched == media + 8 < size
