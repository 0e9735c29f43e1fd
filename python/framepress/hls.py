"""HLS master playlist: one variant per rendition, written after the rungs are encoded.

BANDWIDTH is the peak segment bitrate and AVERAGE-BANDWIDTH the mean over the whole rendition,
both read from the media playlist and the segment sizes, as RFC 8216 §4.3.4.2 defines them. Each
variant's I-frame playlist (trick play) is listed with EXT-X-I-FRAME-STREAM-INF.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from framepress.iframes import write_iframe_playlist
from framepress.languages import bcp47
from framepress.media_playlist import read_media_playlist

AAC_LC = "mp4a.40.2"
AUDIO_GROUP = "audio"


def segment_bitrates(playlist: Path) -> tuple[int, int]:
    """(peak, average) bits per second over the playlist's segments, init segment included."""
    media = read_media_playlist(playlist)
    init_bits = os.path.getsize(playlist.parent / media.init) * 8
    peak, total_bits, total_s = 0.0, 0, 0.0
    for seg in media.segments:
        if seg.duration <= 0:
            continue
        bits = os.path.getsize(playlist.parent / seg.uri) * 8
        peak = max(peak, (bits + init_bits) / seg.duration)
        total_bits += bits
        total_s += seg.duration
    average = (total_bits + init_bits) / total_s if total_s else 0
    return int(peak), int(average)


def _audio_names(audio: Sequence) -> list[str]:
    """NAME of each audio rendition: its language, unique within the group."""
    names = []
    for i, a in enumerate(audio):
        name = a.language or f"audio {i + 1}"
        names.append(name if name not in names else f"{name} {i + 1}")
    return names


def write_master_playlist(hls_dir: Path, renditions: Sequence, fps: float, audio: Sequence = ()) -> Path:
    """The master playlist over the video renditions' and the audio tracks' media playlists.

    Audio tracks (objects with playlist, language, default, channels) form one EXT-X-MEDIA group;
    each variant's bandwidth then counts the group's most demanding track, as RFC 8216 asks.
    """
    out = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    audio_peak = audio_average = 0
    for a, name in zip(audio, _audio_names(audio)):
        peak, average = segment_bitrates(Path(a.playlist))
        audio_peak, audio_average = max(audio_peak, peak), max(audio_average, average)
        lang = f',LANGUAGE="{bcp47(a.language)}"' if a.language else ""
        out.append(f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="{AUDIO_GROUP}",NAME="{name}"{lang},'
                   f'DEFAULT={"YES" if a.default else "NO"},AUTOSELECT=YES,CHANNELS="{a.channels}",'
                   f'URI="{Path(a.playlist).name}"')
    iframes = []
    for r in sorted(renditions, key=lambda r: -r.height):
        playlist = Path(r.playlist)
        peak, average = segment_bitrates(playlist)
        codecs = r.codec_string + (f",{AAC_LC}" if r.has_audio else "")
        group = f',AUDIO="{AUDIO_GROUP}"' if audio else ""
        out.append(f'#EXT-X-STREAM-INF:BANDWIDTH={peak + audio_peak},AVERAGE-BANDWIDTH={average + audio_average},'
                   f'RESOLUTION={r.width}x{r.height},CODECS="{codecs}",FRAME-RATE={fps:.3f}{group}')
        out.append(playlist.name)
        trick = write_iframe_playlist(playlist)
        iframes.append(f'#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={trick.peak_bandwidth},'
                       f'AVERAGE-BANDWIDTH={trick.average_bandwidth},RESOLUTION={r.width}x{r.height},'
                       f'CODECS="{r.codec_string}",URI="{trick.path.name}"')
    master = hls_dir / "master.m3u8"
    master.write_text("\n".join(out + iframes) + "\n")
    return master
