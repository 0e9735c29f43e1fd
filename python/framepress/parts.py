"""A source transcoded in parts (time ranges, `transcode(..., start=, end=)`) and put back
together without encoding again: the bytes a range reads, the audio encoded once for the whole
source, and the parts' video joined with that audio into one MP4 per rung."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from framepress import _engine
from framepress.engine import AudioTrack, _check_input


@dataclass(frozen=True)
class ByteSpan:
    first: int      # offset of the first byte the range reads
    end: int        # one past the last
    packets: int    # video packets in between that it decodes


def range_span(source: str | os.PathLike, start: float, end: float | None) -> ByteSpan:
    """The bytes of `source` that `transcode(source, ..., start=start, end=end)` reads."""
    return ByteSpan(**_engine.range_span(_check_input(source), float(start), float(end or 0.0)))


def write_audio(source: str | os.PathLike, out_dir: str | os.PathLike, *, bitrate: int = 128_000,
                segment_seconds: float = 4.0) -> AudioTrack:
    """Encode the source's audio once: `out_dir/audio.mp4` and the HLS audio playlist
    `out_dir/hls/audio_0.m3u8`, on the parts' timeline. `index` -1 (no files) without audio."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return AudioTrack(**_engine.write_audio(_check_input(source), str(out_dir), int(bitrate),
                                            float(segment_seconds)))


def join_parts(parts: list[str | os.PathLike], audio: str | os.PathLike | None,
               out: str | os.PathLike) -> int:
    """Join the parts' video (in order) and `audio` into the faststart MP4 `out`, copying
    packets. Returns the video frames written."""
    return _engine.join_parts([_check_input(p) for p in parts],
                              _check_input(audio) if audio else "", str(out))


__all__ = ["ByteSpan", "range_span", "write_audio", "join_parts"]
