"""What fragmented MP4 (CMAF) files hold, read from their boxes (ISO/IEC 14496-12).

The manifests beside the HLS playlists (the DASH MPD, the I-frame playlists) describe the segments
the engine wrote; reading the boxes gives their exact timing and keyframe byte ranges without
decoding or rewriting anything.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"moof", b"traf", b"edts", b"dinf"}
_NON_SYNC = 0x10000  # sample_is_non_sync_sample in the sample flags


class Fmp4Error(ValueError):
    """A file that is not the fragmented MP4 the engine writes."""


@dataclass
class Box:
    type: str
    start: int          # offset of the box header in the file
    end: int            # offset just past the box
    body: int           # offset of the payload
    children: list["Box"] = field(default_factory=list)

    def find(self, type_: str) -> "Box | None":
        return next((c for c in self.children if c.type == type_), None)

    def all(self, type_: str) -> list["Box"]:
        return [c for c in self.children if c.type == type_]


def parse_boxes(data: bytes, start: int = 0, end: int | None = None) -> list[Box]:
    end = len(data) if end is None else end
    boxes, pos = [], start
    while pos < end:
        size, kind, header = end - pos, b"????", 8
        if end - pos >= 8:
            size, kind = struct.unpack_from(">I4s", data, pos)
            if size == 1 and end - pos >= 16:
                size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
            elif size == 0:
                size = end - pos
        if size < header or pos + size > end:
            raise Fmp4Error(f"box {kind!r} at byte {pos} runs past its container")
        box = Box(kind.decode("latin-1"), pos, pos + size, pos + header)
        if kind in _CONTAINERS:
            box.children = parse_boxes(data, box.body, box.end)
        boxes.append(box)
        pos += size
    return boxes


@dataclass
class Track:
    track_id: int
    handler: str            # "vide" or "soun"
    timescale: int
    language: str = "und"
    sample_entry: str = ""  # avc1, hvc1, av01, mp4a...
    default_duration: int = 0
    default_size: int = 0
    default_flags: int = 0


@dataclass
class Sample:
    offset: int      # file offset of its data
    size: int
    duration: int
    sync: bool
    composition_offset: int = 0   # presentation minus decode time (B-frames)


@dataclass
class Fragment:
    """One track's run of samples in one moof."""
    track_id: int
    moof_start: int
    decode_time: int
    samples: list[Sample]

    @property
    def duration(self) -> int:
        return sum(s.duration for s in self.samples)


def _fullbox(data: bytes, box: Box) -> tuple[int, int, int]:
    """(version, flags, payload offset after them)."""
    v_flags = struct.unpack_from(">I", data, box.body)[0]
    return v_flags >> 24, v_flags & 0xFFFFFF, box.body + 4


def _language(packed: int) -> str:
    code = "".join(chr(((packed >> shift) & 0x1F) + 0x60) for shift in (10, 5, 0))
    return code if code.isalpha() else "und"


def read_init(path: Path) -> dict[int, Track]:
    """The tracks an init segment declares, by track id."""
    data = Path(path).read_bytes()
    moov = next((b for b in parse_boxes(data) if b.type == "moov"), None)
    if moov is None:
        raise Fmp4Error(f"{Path(path).name} has no moov box")
    tracks: dict[int, Track] = {}
    for trak in moov.all("trak"):
        tkhd, mdia = trak.find("tkhd"), trak.find("mdia")
        version, _, p = _fullbox(data, tkhd)
        track_id = struct.unpack_from(">I", data, p + (16 if version == 1 else 8))[0]
        version, _, p = _fullbox(data, mdia.find("mdhd"))
        p += 16 if version == 1 else 8
        timescale = struct.unpack_from(">I", data, p)[0]
        lang = struct.unpack_from(">H", data, p + (12 if version == 1 else 8))[0]
        _, _, p = _fullbox(data, mdia.find("hdlr"))
        handler = data[p + 4:p + 8].decode("latin-1")
        track = Track(track_id, handler, timescale, _language(lang))
        stbl = mdia.find("minf") and mdia.find("minf").find("stbl")
        stsd = stbl.find("stsd") if stbl else None
        if stsd is not None:
            entry = stsd.body + 8  # version/flags and entry count
            track.sample_entry = data[entry + 4:entry + 8].decode("latin-1")
        tracks[track_id] = track
    mvex = moov.find("mvex")
    for trex in mvex.all("trex") if mvex else []:
        _, _, p = _fullbox(data, trex)
        track_id, _, duration, size, flags = struct.unpack_from(">5I", data, p)
        if track_id in tracks:
            t = tracks[track_id]
            t.default_duration, t.default_size, t.default_flags = duration, size, flags
    return tracks


def _traf_samples(data: bytes, moof: Box, traf: Box, tracks: dict[int, Track]) -> Fragment:
    _, flags, p = _fullbox(data, traf.find("tfhd"))
    track_id = struct.unpack_from(">I", data, p)[0]
    if track_id not in tracks:
        raise Fmp4Error(f"fragment of track {track_id}, which the init segment does not declare")
    track = tracks[track_id]
    p += 4
    base = moof.start  # default-base-is-moof, and the base of a moof's first traf
    if flags & 0x1:
        base = struct.unpack_from(">Q", data, p)[0]
        p += 8
    if flags & 0x2:
        p += 4
    duration, size, sample_flags = track.default_duration, track.default_size, track.default_flags
    if flags & 0x8:
        duration = struct.unpack_from(">I", data, p)[0]
        p += 4
    if flags & 0x10:
        size = struct.unpack_from(">I", data, p)[0]
        p += 4
    if flags & 0x20:
        sample_flags = struct.unpack_from(">I", data, p)[0]
    decode_time = 0
    tfdt = traf.find("tfdt")
    if tfdt is not None:
        version, _, q = _fullbox(data, tfdt)
        decode_time = struct.unpack_from(">Q" if version == 1 else ">I", data, q)[0]
    samples: list[Sample] = []
    for trun in traf.all("trun"):
        tr_version, tr_flags, q = _fullbox(data, trun)
        count = struct.unpack_from(">I", data, q)[0]
        q += 4
        offset = base
        if tr_flags & 0x1:
            offset = base + struct.unpack_from(">i", data, q)[0]
            q += 4
        elif samples:
            offset = samples[-1].offset + samples[-1].size
        first_flags = None
        if tr_flags & 0x4:
            first_flags = struct.unpack_from(">I", data, q)[0]
            q += 4
        for i in range(count):
            d, s, f = duration, size, sample_flags
            if tr_flags & 0x100:
                d = struct.unpack_from(">I", data, q)[0]
                q += 4
            if tr_flags & 0x200:
                s = struct.unpack_from(">I", data, q)[0]
                q += 4
            if tr_flags & 0x400:
                f = struct.unpack_from(">I", data, q)[0]
                q += 4
            cts = 0
            if tr_flags & 0x800:
                cts = struct.unpack_from(">i" if tr_version == 1 else ">I", data, q)[0]
                q += 4
            if i == 0 and first_flags is not None:
                f = first_flags
            samples.append(Sample(offset, s, d, not f & _NON_SYNC, cts))
            offset += s
    return Fragment(track_id, moof.start, decode_time, samples)


def read_fragments(path: Path, tracks: dict[int, Track]) -> Iterator[Fragment]:
    """Every track fragment of a media segment, in file order."""
    data = Path(path).read_bytes()
    for moof in (b for b in parse_boxes(data) if b.type == "moof"):
        for traf in moof.all("traf"):
            yield _traf_samples(data, moof, traf, tracks)


@dataclass
class SegmentInfo:
    """One media segment, as seen through one of its tracks."""
    name: str
    bytes: int
    decode_time: int     # in the track's timescale
    duration: int
    presentation_time: int   # the earliest of its samples' presentation times
    keyframe_end: int    # bytes from the file's start to the end of its first sync sample (0: none)


def segment_info(path: Path, tracks: dict[int, Track], track_id: int) -> SegmentInfo:
    fragments = [f for f in read_fragments(path, tracks) if f.track_id == track_id]
    if not fragments:
        raise Fmp4Error(f"{Path(path).name} has no samples of track {track_id}")
    key = next((s for f in fragments for s in f.samples if s.sync), None)
    earliest = None
    for f in fragments:
        t = f.decode_time
        for s in f.samples:
            earliest = t + s.composition_offset if earliest is None else min(earliest, t + s.composition_offset)
            t += s.duration
    return SegmentInfo(Path(path).name, Path(path).stat().st_size, fragments[0].decode_time,
                       sum(f.duration for f in fragments), earliest, key.offset + key.size if key else 0)
