"""A source transcoded in parts (time ranges, `transcode(..., start=, end=)`) and put back
together without encoding again: the bytes a range reads, the audio tracks encoded once for the
whole source, and the parts' video joined with them into one MP4 per rung."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from framepress import _engine
from framepress.engine import AudioRendition, AudioTrack, _check_input


@dataclass(frozen=True)
class ByteSpan:
    first: int      # offset of the first byte the range reads
    end: int        # one past the last
    packets: int    # video packets in between that it decodes


def range_span(source: str | os.PathLike, start: float, end: float | None) -> ByteSpan:
    """The bytes of `source` that `transcode(source, ..., start=start, end=end)` reads."""
    return ByteSpan(**_engine.range_span(_check_input(source), float(start), float(end or 0.0)))


@dataclass(frozen=True)
class IndexedCopy:
    """What `copy_to_mp4` wrote."""
    video_packets: int
    audio_streams: int      # the audio tracks copied
    left_out: list[str]     # a sentence per source stream not copied, and why


def copy_to_mp4(source: str | os.PathLike, out: str | os.PathLike, *,
                tracks: str | Sequence[str] = "all") -> IndexedCopy:
    """Copy (no encoding) the video and the audio tracks the ladder's `audio.tracks` keeps from a
    source without a sample index (MPEG-TS, Matroska) into the MP4 `out`, timestamps as the source
    has them, so `range_span` and time ranges work on it as on the source. Other streams are left
    out. InputError when MP4 cannot hold the video or a kept audio track."""
    raw = _engine.remux_to_mp4(_check_input(source), str(out), tracks if isinstance(tracks, str) else list(tracks))
    return IndexedCopy(**raw)


@dataclass(frozen=True)
class StandaloneAudio:
    """What `write_audio` made, as a whole source's transcode reports it."""
    audio: AudioTrack                        # the default track's stream and every warning
    audio_renditions: list[AudioRendition]   # one per track kept, its playlist under `out_dir/hls`


def write_audio(source: str | os.PathLike, out_dir: str | os.PathLike, *, bitrate: int = 128_000,
                segment_seconds: float = 4.0, tracks: str | Sequence[str] = "all") -> StandaloneAudio:
    """Encode the source's audio once, the tracks the ladder's `audio.tracks` keeps (all, first or
    languages): all in `out_dir/audio.mp4`, each in its HLS rendition `out_dir/hls/audio_<n>.m3u8`,
    on the parts' timeline. No files, and an `audio.index` of -1, without audio."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    raw = _engine.write_audio(_check_input(source), str(out_dir), int(bitrate), float(segment_seconds),
                              tracks if isinstance(tracks, str) else list(tracks))
    return StandaloneAudio(AudioTrack(**raw["audio"]), [AudioRendition(**a) for a in raw["audio_renditions"]])


def join_parts(parts: list[str | os.PathLike], audio: str | os.PathLike | None,
               out: str | os.PathLike) -> int:
    """Join the parts' video (in order) and every track of `audio` (with its language and
    default flag) into the faststart MP4 `out`, copying packets. Returns the video frames written."""
    return _engine.join_parts([_check_input(p) for p in parts],
                              _check_input(audio) if audio else "", str(out))


__all__ = ["ByteSpan", "range_span", "IndexedCopy", "copy_to_mp4", "StandaloneAudio", "write_audio", "join_parts"]
