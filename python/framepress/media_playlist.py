"""A strict reader of the HLS media playlists the engine writes (fMP4 segments, VOD)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_EXTINF = re.compile(r"#EXTINF:([0-9.]+)")
_MAP = re.compile(r'#EXT-X-MAP:URI="([^"]+)"')


@dataclass
class PlaylistSegment:
    duration: float
    uri: str


@dataclass
class MediaPlaylist:
    init: str
    segments: list[PlaylistSegment]


def read_media_playlist(path: Path) -> MediaPlaylist:
    lines = Path(path).read_text().splitlines()
    init, segments, duration = None, [], None
    for line in lines:
        if m := _MAP.match(line):
            init = m.group(1)
        elif m := _EXTINF.match(line):
            duration = float(m.group(1))
        elif line and not line.startswith("#") and duration is not None:
            segments.append(PlaylistSegment(duration, line))
            duration = None
    if not lines or lines[0] != "#EXTM3U" or init is None or not segments:
        raise ValueError(f"{Path(path).name} is not an HLS playlist of fMP4 segments")
    return MediaPlaylist(init, segments)
