"""The stitch's HLS/DASH media segments: copied within the object store, never pulled whole.

The chunks' segments become the parent's as they are (renamed into one sequence), so their bytes
need not leave the store: the upload copies each object server-side. What the stitch writes about
them (the master playlist's bitrates, the I-frame playlists, the DASH timeline) reads only their
boxes and sizes, so it works on a stand-in: a sparse file of the segment's size holding its boxes
but the media data, fetched with one ranged GET in the common case (the boxes come first).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from framepress.service.split.source_ranges import box_ranges, write_sparse

SEGMENT_SUFFIX = ".m4s"
# A segment's boxes before its media data (styp, sidx, moof: some 12 bytes a sample) take a few kB;
# one GET of this much reads them in the common case, a larger moof costs one more.
HEAD_BYTES = 16 * 1024


class _HeadReader:
    """Ranged reads of one object, the first `HEAD_BYTES` fetched once; counts the bytes fetched."""

    def __init__(self, storage: Any, uri: str, size: int) -> None:
        self.storage, self.uri = storage, uri
        self.head = storage.read_range(uri, 0, min(size, HEAD_BYTES)) if size else b""
        self.fetched = len(self.head)

    def __call__(self, start: int, end: int) -> bytes:
        cached = self.head[start:end]
        if start + len(cached) == end:
            return cached
        rest = self.storage.read_range(self.uri, start + len(cached), end)
        self.fetched += len(rest)
        return cached + rest


def write_stand_in(storage: Any, uri: str, size: int, dest: Path) -> int:
    """A stand-in for the segment at `uri` (`size` bytes) at `dest`. Returns the bytes fetched."""
    read = _HeadReader(storage, uri, size)
    write_sparse(dest, size, box_ranges(read, size, uri), read)
    return read.fetched


__all__ = ["SEGMENT_SUFFIX", "HEAD_BYTES", "write_stand_in"]
