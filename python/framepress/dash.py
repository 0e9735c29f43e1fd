"""DASH manifest over the HLS playlists' own CMAF segments: one set of segments, two manifests.

The MPD sits in `dash/` and reaches the segments in `hls/` through its BaseURL, so nothing is
stored twice. Each representation's SegmentTimeline is read from the segments' boxes (tfdt and
trun), not from the rounded #EXTINF durations, so it matches the media to the sample. @bandwidth is
the peak segment bitrate, the same figure as the HLS variant's BANDWIDTH: with a buffer of
minBufferTime (the longest segment) a client fetching at that rate never stalls.
"""
from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

from framepress.fmp4 import SegmentInfo, Track, read_init, segment_info
from framepress.languages import bcp47
from framepress.media_playlist import read_media_playlist

MPD_NS = "urn:mpeg:dash:schema:mpd:2011"
PROFILES = "urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019"
CHANNEL_SCHEME = "urn:mpeg:dash:23003:3:audio_channel_configuration:2011"
_NUMBERED = re.compile(r"^(.*?)(\d+)(\.m4s)$")


@dataclass
class VideoStream:
    id: str
    playlist: Path
    codecs: str          # RFC 6381, muxed audio included when the segments carry it
    width: int
    height: int


@dataclass
class AudioStream:
    id: str
    playlist: Path
    codecs: str
    sample_rate: int        # of the encoded audio (the sample entry's fields are templates in ISO MP4)
    channels: int
    language: str = "und"
    default: bool = False


@dataclass
class _Timed:
    track: Track
    init: str
    segments: list[SegmentInfo]


def _read(playlist: Path, handler: str) -> _Timed:
    media = read_media_playlist(playlist)
    tracks = read_init(playlist.parent / media.init)
    track = next((t for t in tracks.values() if t.handler == handler), None)
    if track is None:
        raise ValueError(f"{media.init} has no {'video' if handler == 'vide' else 'audio'} track")
    return _Timed(track, media.init,
                  [segment_info(playlist.parent / s.uri, tracks, track.track_id) for s in media.segments])


def _template(timed: _Timed) -> ET.Element:
    """SegmentTemplate with $Number$ (the engine numbers segments from a start) and a timeline."""
    first = _NUMBERED.match(timed.segments[0].name)
    prefix, digits, ext = first.groups() if first else ("", "0", "")
    start = int(digits)
    for i, seg in enumerate(timed.segments):
        if not first or seg.name != f"{prefix}{start + i:0{len(digits)}d}{ext}":
            raise ValueError(f"segment {seg.name} breaks the numbering a SegmentTemplate needs")
    # Times are presentation times; the offset puts the first segment's earliest one at the period's
    # start, as the engine starts video and audio together (B-frames delay the first video picture).
    template = ET.Element("SegmentTemplate", timescale=str(timed.track.timescale), initialization=timed.init,
                          media=f"{prefix}$Number%0{len(digits)}d${ext}", startNumber=str(start),
                          presentationTimeOffset=str(timed.segments[0].presentation_time))
    timeline = ET.SubElement(template, "SegmentTimeline")
    last, expected = None, None
    for seg in timed.segments:
        if last is not None and seg.duration == int(last.get("d")) and seg.presentation_time == expected:
            last.set("r", str(int(last.get("r", "0")) + 1))
        else:
            last = ET.SubElement(timeline, "S", d=str(seg.duration))
            if seg.presentation_time != expected:
                last.set("t", str(seg.presentation_time))
        expected = seg.presentation_time + seg.duration
    return template


def _peak_bandwidth(timed: _Timed) -> int:
    scale = timed.track.timescale
    return max(1, max(math.ceil(s.bytes * 8 * scale / s.duration) for s in timed.segments if s.duration > 0))


def _seconds(timed: _Timed) -> float:
    return sum(s.duration for s in timed.segments) / timed.track.timescale


def _iso_duration(seconds: float) -> str:
    return f"PT{seconds:.3f}S"


def _frame_rate(fps: float) -> str:
    rate = Fraction(fps).limit_denominator(1001)
    return str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator}"


def write_dash_manifest(dash_dir: Path, hls_dir: Path, videos: Sequence[VideoStream],
                        audios: Sequence[AudioStream], fps: float) -> Path:
    """Writes `dash_dir/manifest.mpd` over the segments of the given HLS media playlists."""
    video_timed = [(_read(v.playlist, "vide"), v) for v in sorted(videos, key=lambda v: -v.height)]
    audio_timed = [(_read(a.playlist, "soun"), a) for a in audios]
    every = [t for t, _ in video_timed + audio_timed]
    if not video_timed:
        raise ValueError("a DASH manifest needs at least one video stream")
    longest = max(s.duration / t.track.timescale for t in every for s in t.segments)
    mpd = ET.Element("MPD", xmlns=MPD_NS, profiles=PROFILES, type="static",
                     mediaPresentationDuration=_iso_duration(max(_seconds(t) for t in every)),
                     minBufferTime=_iso_duration(longest))
    ET.SubElement(mpd, "BaseURL").text = Path(os.path.relpath(hls_dir, dash_dir)).as_posix() + "/"
    period = ET.SubElement(mpd, "Period", id="0", start="PT0S")
    rate = _frame_rate(fps)
    vset = ET.SubElement(period, "AdaptationSet", id="0", contentType="video", mimeType="video/mp4",
                         segmentAlignment="true", startWithSAP="1", frameRate=rate,
                         maxWidth=str(max(v.width for _, v in video_timed)),
                         maxHeight=str(max(v.height for _, v in video_timed)))
    for timed, v in video_timed:
        rep = ET.SubElement(vset, "Representation", id=v.id, bandwidth=str(_peak_bandwidth(timed)),
                            codecs=v.codecs, width=str(v.width), height=str(v.height), frameRate=rate)
        rep.append(_template(timed))
    for i, (timed, a) in enumerate(audio_timed, start=1):
        aset = ET.SubElement(period, "AdaptationSet", id=str(i), contentType="audio", mimeType="audio/mp4",
                             lang=bcp47(a.language or "und"), segmentAlignment="true", startWithSAP="1")
        ET.SubElement(aset, "Role", schemeIdUri="urn:mpeg:dash:role:2011", value="main" if a.default else "alternate")
        rep = ET.SubElement(aset, "Representation", id=a.id, bandwidth=str(_peak_bandwidth(timed)),
                            codecs=a.codecs, audioSamplingRate=str(a.sample_rate))
        ET.SubElement(rep, "AudioChannelConfiguration", schemeIdUri=CHANNEL_SCHEME, value=str(a.channels))
        rep.append(_template(timed))
    ET.indent(mpd)
    dash_dir.mkdir(parents=True, exist_ok=True)
    path = dash_dir / "manifest.mpd"
    path.write_bytes(ET.tostring(mpd, encoding="UTF-8", xml_declaration=True) + b"\n")
    return path
