"""The bytes of an MP4 source a chunk worker needs, and fetching only those.

An MP4's index (the `moov` box) says where every sample lies, so a worker that has the header
boxes and the byte span of its time range (`framepress._engine.range_span`) can transcode the
range from a sparse local copy of the source: same size, those bytes in place, zeros elsewhere,
which the engine never reads (it seeks straight to the range, and reads no audio for it).
"""
from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO, Callable

#: Containers whose header indexes every sample (the engine's demuxer name for them).
INDEXED_FORMATS = ("mov,mp4,m4a,3gp,3g2,mj2",)
_MDAT = b"mdat"


def header_ranges(path: Path) -> list[tuple[int, int]]:
    """[start, end) byte ranges of everything but the media data: every top-level box in full
    except `mdat`, whose 8 or 16 header bytes are kept (the demuxer reads them to step over it)."""
    with open(path, "rb") as f:
        return box_ranges(file_reader(f), path.stat().st_size, str(path))


def box_ranges(read: Callable[[int, int], bytes], size: int, name: str) -> list[tuple[int, int]]:
    """`header_ranges` of the `size` bytes `read(start, end)` gives (`name` for errors)."""
    ranges: list[tuple[int, int]] = []
    at = 0
    while at + 8 <= size:
        box_size, kind = struct.unpack(">I4s", read(at, at + 8))
        header = 8
        if box_size == 1:                      # a 64-bit size follows
            box_size = struct.unpack(">Q", read(at + 8, at + 16))[0]
            header = 16
        elif box_size == 0:                    # runs to the end of the file
            box_size = size - at
        if box_size < header:
            raise ValueError(f"{name}: malformed box at byte {at}")
        end = min(at + box_size, size)
        ranges.append((at, at + header) if kind == _MDAT else (at, end))
        at = end
    return merge(ranges)


def merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted ranges with touching and overlapping ones joined."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def total(ranges: list[tuple[int, int]]) -> int:
    return sum(end - start for start, end in ranges)


def write_sparse(dest: Path, size: int, ranges: list[tuple[int, int]],
                 read: Callable[[int, int], bytes]) -> int:
    """Make `dest` a file of `size` bytes holding `read(start, end)` at each range (and holes
    elsewhere). Returns the bytes read."""
    got = 0
    with open(dest, "wb") as out:
        out.truncate(size)
        for start, end in ranges:
            data = read(start, end)
            if len(data) != end - start:
                raise OSError(f"read {len(data)} bytes of the {end - start} at {start}")
            out.seek(start)
            out.write(data)
            got += len(data)
    return got


def file_reader(src: BinaryIO) -> Callable[[int, int], bytes]:
    def read(start: int, end: int) -> bytes:
        src.seek(start)
        return src.read(end - start)
    return read


def fetch(storage, uri: str, dest: Path, size: int, ranges: list[tuple[int, int]]) -> int:
    """A sparse copy of the object at `uri` (`size` bytes) at `dest` holding only `ranges`, read
    with ranged GETs. Returns the bytes read."""
    return write_sparse(dest, size, [(int(a), int(b)) for a, b in ranges],
                        lambda start, end: storage.read_range(uri, start, end))


__all__ = ["INDEXED_FORMATS", "header_ranges", "box_ranges", "merge", "total", "write_sparse", "file_reader", "fetch"]
