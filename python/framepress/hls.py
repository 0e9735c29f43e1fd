"""HLS master playlist: one variant per rendition, written after the rungs are encoded.

BANDWIDTH is the peak segment bitrate and AVERAGE-BANDWIDTH the mean over the whole rendition,
both read from the media playlist and the segment sizes, as RFC 8216 §4.3.4.2 defines them.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

_EXTINF = re.compile(r"#EXTINF:([0-9.]+)")
AAC_LC = "mp4a.40.2"


def segment_bitrates(playlist: Path) -> tuple[int, int]:
    """(peak, average) bits per second over the playlist's segments, init segment included."""
    lines = playlist.read_text().splitlines()
    init = next((re.search(r'URI="([^"]+)"', l).group(1) for l in lines if l.startswith("#EXT-X-MAP")), None)
    init_bytes = os.path.getsize(playlist.parent / init) if init else 0
    peak, total_bits, total_s, duration = 0.0, 0, 0.0, None
    for line in lines:
        m = _EXTINF.match(line)
        if m:
            duration = float(m.group(1))
        elif line and not line.startswith("#") and duration:
            bits = os.path.getsize(playlist.parent / line) * 8
            peak = max(peak, (bits + init_bytes * 8) / duration)
            total_bits += bits
            total_s += duration
            duration = None
    average = (total_bits + init_bytes * 8) / total_s if total_s else 0
    return int(peak), int(average)


def write_master_playlist(hls_dir: Path, renditions: Sequence, fps: float) -> Path:
    out = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for r in sorted(renditions, key=lambda r: -r.height):
        playlist = Path(r.playlist)
        peak, average = segment_bitrates(playlist)
        codecs = r.codec_string + (f",{AAC_LC}" if r.has_audio else "")
        out.append(f'#EXT-X-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={average},'
                   f'RESOLUTION={r.width}x{r.height},CODECS="{codecs}",FRAME-RATE={fps:.3f}')
        out.append(playlist.name)
    master = hls_dir / "master.m3u8"
    master.write_text("\n".join(out) + "\n")
    return master
