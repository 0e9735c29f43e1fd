"""The stitch step: a parent's outputs put together from its chunks', encoding nothing again.

Under the parent's lease, once every chunk has succeeded: each rung's MP4 is the chunks' video
joined with the audio encoded once by the split (`parts.join_parts`, faststart); each rung's HLS
media playlist lists every chunk's fMP4 segments in order (renamed into one sequence) after one
init segment, the first chunk's (written as a whole source's is; the later chunks carry the
source's times in their segments, so they play on under it). The audio tracks are the ones the
split encoded, each in its own rendition as a whole source's HLS has them; the master playlist
(an audio group of every language) and the DASH manifest (an adaptation set per language) are
written over them as for a whole source.

Only what is remuxed or rewritten is pulled (the chunks' MP4s, the audio's, the playlists and
init segments): the media segments stay in the store, each copied there to its stitched name
when the outputs are uploaded, and the manifests are written over stand-ins of them
(`segment_copies`).
"""
from __future__ import annotations

import dataclasses
import math
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import select

from framepress.dash import write_dash_manifest
from framepress.engine import AudioRendition, Rendition, _dash_audios, _dash_videos
from framepress.hls import write_master_playlist
from framepress.media_playlist import read_media_playlist
from framepress.service.attempt_output import ATTEMPTS_DIR
from framepress.service.db import RenditionRow, TaskEvent
from framepress.service.errors import StorageError
from framepress.service.tasks import EventKind
from framepress.service.split import chunks
from framepress.service.split.segment_copies import SEGMENT_SUFFIX, write_stand_in
from framepress.service.storage import Transfer

# Puts a media segment (src) at its place in the stitched outputs (dst).
PlaceSegment = Callable[[Path, Path], Any]


class StitchResult:
    """What `TaskRun._succeed` reads of a transcode, for the stitched outputs."""

    def __init__(self, renditions: list[Rendition], hls_master: str, dash_manifest: str,
                 audio: list[AudioRendition]) -> None:
        self.renditions, self.hls_master, self.dash_manifest = renditions, hls_master, dash_manifest
        self.audio = audio
        self.thumbnails = None              # not made for split tasks (no chunk sees the whole)
        self.per_title: dict[str, Any] = {}  # the ladder chosen by the split, when per-title


def stitch(run: Any, scratch: Path) -> tuple[Path, StitchResult, dict[str, Any], dict[str, str]]:
    """Pull the chunks' outputs and the audio (but their media segments), stitch them under
    `scratch/out`. Returns the output directory, the result for the success, the `stitched`
    event's data, and the outputs to copy within the store rather than upload: output key ->
    the segment's URI (the files there are stand-ins, see `segment_copies`)."""
    run.stage = "stitch"
    t = time.monotonic()
    with run.store.db.session() as s:
        rows = chunks.of_parent(s, run.spec.id)
        chunk_ids = [c.id for c in rows]   # every one succeeded (see TaskRun)
        renditions: dict[str, list[RenditionRow]] = {cid: [] for cid in chunk_ids}
        for r in s.scalars(select(RenditionRow).where(RenditionRow.task_id.in_(chunk_ids))):
            renditions[r.task_id].append(r)
        split = s.scalars(select(TaskEvent.data).where(TaskEvent.task_id == run.spec.id,
                                                       TaskEvent.kind == EventKind.SPLIT)
                          .order_by(TaskEvent.id.desc()).limit(1)).first() or {}
    first_rungs = {r.name: (r.width, r.height, r.codec or "", r.codec_string or "") for r in renditions[chunk_ids[0]]}
    segments: dict[Path, Transfer] = {}   # local path -> the segment object left in the store
    pulled = sum(_pull_prefix(run.storage, outputs_prefix(renditions[cid]), scratch / "chunks" / str(i), segments)
                 for i, cid in enumerate(chunk_ids))
    pulled += _pull_prefix(run.storage, chunks.audio_prefix(run.spec), scratch / "audio", segments)
    out = scratch / "out"
    copies: dict[str, str] = {}
    fetched = 0

    def place_segment(src: Path, dst: Path) -> None:
        nonlocal fetched
        obj = segments[src]
        fetched += write_stand_in(run.storage.for_uri(obj.uri), obj.uri, obj.bytes, dst)
        copies[dst.relative_to(out).as_posix()] = obj.uri

    parts_dirs = [scratch / "chunks" / str(i) for i in range(len(chunk_ids))]
    audio_dir = scratch / "audio"
    result = assemble(parts_dirs, audio_dir if (audio_dir / "audio.mp4").is_file() else None, out,
                      first_rungs, tracks_of(split), place_segment)
    result.per_title = split.get("per_title", {})
    run.seconds["stitch"] = time.monotonic() - t
    data = {"chunks": len(chunk_ids), "renditions": {r.name: r.frames for r in result.renditions},
            "audio": bool(result.audio), "pulled_bytes": pulled + fetched,
            "copied_segments": len(copies), "seconds": round(run.seconds["stitch"], 4)}
    return out, result, data, copies


def outputs_prefix(renditions: list[RenditionRow]) -> str:
    """Where a chunk's outputs are: the prefix of its succeeded attempt, which its renditions rows
    point into (chunks' outputs are not copied anywhere else)."""
    if not renditions:
        raise StorageError("a succeeded chunk has no renditions rows", step="stitch")
    return renditions[0].uri.rsplit("/", 1)[0]


def track_data(track: AudioRendition) -> dict[str, Any]:
    """An audio track the split encoded, for its `split` event (its playlist is named after it)."""
    return {k: v for k, v in dataclasses.asdict(track).items() if k != "playlist"}


def tracks_of(split: dict[str, Any]) -> list[AudioRendition]:
    """The audio tracks a `split` event's data lists. A parent split before the event listed them
    has the one track its split encoded then (`audio_0`, the source's best stream)."""
    if "audio_tracks" in split:
        return [AudioRendition(playlist="", **t) for t in split["audio_tracks"]]
    audio = split.get("audio") or {}
    if audio.get("index", -1) < 0:
        return []
    return [AudioRendition(name="audio_0", playlist="", index=audio["index"], language=audio.get("language", ""),
                           default=True, sample_rate=audio.get("sample_rate", 0), channels=audio.get("channels", 0))]


def assemble(parts_dirs: list[Path], audio_dir: Path | None, out: Path,
             rungs: dict[str, tuple[int, int, str, str]], audio: list[AudioRendition],
             place_segment: PlaceSegment = shutil.copyfile) -> StitchResult:
    """The stitched outputs under `out` from the parts' output directories (in order) and the
    audio written by `parts.write_audio` into `audio_dir` (None: no audio), whose tracks are
    `audio`. `rungs`: name -> (width, height, codec, codec string). `place_segment(src, dst)`
    puts a media segment of a part or of the audio at its place in `out`."""
    from framepress import parts, probe
    (out / "hls").mkdir(parents=True)
    if audio_dir is None:
        audio = []
    renditions = []
    for name, (width, height, codec, codec_string) in rungs.items():
        mp4 = out / f"{name}.mp4"
        frames = parts.join_parts([d / f"{name}.mp4" for d in parts_dirs],
                                  audio_dir / "audio.mp4" if audio else None, mp4)
        playlist = join_playlists([d / "hls" / f"{name}.m3u8" for d in parts_dirs], out / "hls", name,
                                  place_segment)
        duration = probe(mp4).duration or 1.0
        renditions.append(Rendition(name=name, path=str(mp4), width=width, height=height, frames=frames,
                                    bytes=mp4.stat().st_size, bitrate=int(mp4.stat().st_size * 8 / duration),
                                    encode_fps=0.0, codec=codec, codec_string=codec_string,
                                    playlist=str(playlist), has_audio=bool(audio)))
    tracks: list[AudioRendition] = []
    for a in audio:   # each track's playlist and segments as the split wrote them
        playlist = audio_dir / "hls" / f"{a.name}.m3u8"
        media = read_media_playlist(playlist)
        for name in (playlist.name, media.init):
            shutil.copyfile(audio_dir / "hls" / name, out / "hls" / name)
        for segment in media.segments:
            place_segment(audio_dir / "hls" / segment.uri, out / "hls" / segment.uri)
        tracks.append(dataclasses.replace(a, playlist=str(out / "hls" / playlist.name)))
    fps = next((st.fps for st in probe(renditions[0].path).streams if st.type == "video"), 0.0)
    master = write_master_playlist(out / "hls", renditions, fps, tracks)
    dash = write_dash_manifest(out / "dash", out / "hls", _dash_videos(renditions), _dash_audios(tracks), fps)
    return StitchResult(renditions, str(master), str(dash), tracks)


def _pull_prefix(storage_router: Any, prefix: str, dest: Path, segments: dict[Path, Transfer]) -> int:
    """Download the objects under `prefix` (not its attempts') into `dest`, but the media
    segments: those are listed in `segments` by the path they would have. Returns the bytes."""
    storage = storage_router.for_uri(prefix)
    base = prefix.rstrip("/") + "/"
    got = 0
    for obj in storage.list(base):
        rel = obj.uri[len(base):]
        if rel.startswith(ATTEMPTS_DIR + "/"):
            continue
        target = dest / rel
        if rel.endswith(SEGMENT_SUFFIX):
            segments[target] = obj
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        got += storage.download(obj.uri, target).bytes
    return got


def join_playlists(playlists: list[Path], out_dir: Path, rung: str,
                   place_segment: PlaceSegment = shutil.copyfile) -> Path:
    """One VOD media playlist of every segment of `playlists` in order, renamed
    `<rung>_<n>.m4s` into `out_dir` (by `place_segment(src, dst)`), after the first playlist's
    init segment."""
    init_name = f"{rung}_init.mp4"
    shutil.copyfile(playlists[0].parent / init_name, out_dir / init_name)
    body, longest, n = [], 0.0, 0
    for playlist in playlists:
        for segment in read_media_playlist(playlist).segments:
            name = f"{rung}_{n:05d}{SEGMENT_SUFFIX}"
            place_segment(playlist.parent / segment.uri, out_dir / name)
            body += [f"#EXTINF:{segment.duration:.6f},", name]
            longest = max(longest, segment.duration)
            n += 1
    head = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{math.ceil(longest - 1e-3)}",
            "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-INDEPENDENT-SEGMENTS",
            f'#EXT-X-MAP:URI="{init_name}"']
    out = out_dir / f"{rung}.m3u8"
    out.write_text("\n".join(head + body + ["#EXT-X-ENDLIST"]) + "\n")
    return out


__all__ = ["stitch", "assemble", "join_playlists", "track_data", "tracks_of", "StitchResult"]
