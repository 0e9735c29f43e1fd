"""HLS I-frame playlists (trick play): each segment's first keyframe, addressed by byte range.

The engine cuts every segment on a keyframe, in one movie fragment, so the byte range from the
segment's start to the end of its first sync sample holds the moof, the mdat header and that whole
picture: what a player needs to show it while scrubbing, with no extra encode or file.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from framepress.fmp4 import read_init, segment_info
from framepress.media_playlist import read_media_playlist


@dataclass
class IFramePlaylist:
    path: Path
    peak_bandwidth: int
    average_bandwidth: int


def write_iframe_playlist(media_playlist: Path) -> IFramePlaylist:
    """Writes `<name>_iframes.m3u8` beside a media playlist of fMP4 segments."""
    media = read_media_playlist(media_playlist)
    hls_dir = media_playlist.parent
    tracks = read_init(hls_dir / media.init)
    video = next((t for t in tracks.values() if t.handler == "vide"), None)
    if video is None:
        raise ValueError(f"{media.init} has no video track")
    entries = []
    for seg in media.segments:
        info = segment_info(hls_dir / seg.uri, tracks, video.track_id)  # segments start on keyframes
        entries.append((info.duration / video.timescale, info.keyframe_end, seg.uri))
    target = max(1, max(math.ceil(d - 1e-3) for d, _, _ in entries))
    out = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{target}", "#EXT-X-MEDIA-SEQUENCE:0",
           "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-I-FRAMES-ONLY", "#EXT-X-INDEPENDENT-SEGMENTS",
           f'#EXT-X-MAP:URI="{media.init}"']
    for duration, length, uri in entries:
        out += [f"#EXTINF:{duration:.6f},", f"#EXT-X-BYTERANGE:{length}@0", uri]
    out.append("#EXT-X-ENDLIST")
    path = hls_dir / f"{media_playlist.stem}_iframes.m3u8"
    path.write_text("\n".join(out) + "\n")
    total_s = sum(d for d, _, _ in entries)
    peak = max(length * 8 / d for d, length, _ in entries if d > 0)
    average = sum(length for _, length, _ in entries) * 8 / total_s
    return IFramePlaylist(path, int(math.ceil(peak)), int(math.ceil(average)))
