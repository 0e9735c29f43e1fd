"""The public engine API: `probe` and `transcode`, over the native `_engine` module.

The native side does the media work with the GIL released; this module resolves the ladder,
writes outputs aside and moves them into place on success (so nothing partial is ever left), and
turns the native result into plain dataclasses.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from framepress import _engine
from framepress.errors import Cancelled, GpuError, HardwareError, InputError, OutputError
from framepress.dash import AudioStream, VideoStream, write_dash_manifest
from framepress.hls import AAC_LC, write_master_playlist
from framepress.ladder import Ladder, LadderLike, load_ladder
from framepress.thumbnails import Thumbnails, native_options, write_vtt

HWACCEL_MODES = ("auto", "cpu", "cuda")
PROGRESS_INTERVAL_S = 0.25


@dataclass
class StreamInfo:
    index: int
    type: str
    codec: str
    bitrate: int = 0
    width: int = 0
    height: int = 0
    fps: float = 0.0
    pix_fmt: str = ""
    rotation: float = 0.0
    frames: int = 0
    sample_rate: int = 0
    channels: int = 0


@dataclass
class MediaInfo:
    path: str
    format: str
    duration: float
    bitrate: int
    streams: list[StreamInfo]

    @property
    def video(self) -> Optional[StreamInfo]:
        return next((s for s in self.streams if s.type == "video"), None)

    @property
    def audio(self) -> Optional[StreamInfo]:
        return next((s for s in self.streams if s.type == "audio"), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Progress:
    fraction: float      # 0..1 of the source's duration
    frames: int          # video frames decoded so far
    elapsed: float       # seconds since the transcode started
    fps: float           # decoded frames per second so far


@dataclass
class Rendition:
    name: str
    path: str
    width: int
    height: int
    frames: int
    bytes: int
    bitrate: int
    encode_fps: float
    codec: str = ""
    codec_string: str = ""      # RFC 6381, e.g. avc1.640028
    playlist: str = ""          # media playlist path when HLS was written
    has_audio: bool = False
    psnr: float = 0.0           # dB, all planes, against the source at this size (quality=True); 0 when not measured
    ssim: float = 0.0           # mean over frames; luma only for H.264 (x264's own), all planes for HEVC/AV1


@dataclass
class AudioTrack:
    """The source audio stream the renditions carry (only one is kept) and what was done to it."""
    index: int = -1             # source stream index; -1 when the renditions have no audio
    codec: str = ""             # the source stream's codec
    language: str = ""          # its language tag, "" when it has none
    sample_rate: int = 0        # of the AAC output
    channels: int = 0
    channel_layout: str = ""
    warnings: list[str] = field(default_factory=list)  # dropped, downmixed, resampled, changed, holes filled


@dataclass
class AudioRendition:
    """An audio track in CMAF segments of its own (with HLS/DASH): its media playlist and language."""
    name: str
    playlist: str
    index: int                  # source stream index
    language: str = ""
    default: bool = False
    sample_rate: int = 0
    channels: int = 0
    codec_string: str = AAC_LC


@dataclass
class TranscodeResult:
    renditions: list[Rendition]
    hwaccel_used: str
    hwaccel_reason: str
    seconds: dict[str, float]
    decoded_frames: int
    hls_master: str = ""
    dash_manifest: str = ""     # dash/manifest.mpd over the HLS segments, when DASH was asked for
    audio_renditions: list[AudioRendition] = field(default_factory=list)  # with HLS: one per audio track
    thumbnails: Optional[Thumbnails] = None   # poster, sprite sheets and WebVTT, when asked for
    source: dict[str, Any] = field(default_factory=dict)
    audio: AudioTrack = field(default_factory=AudioTrack)
    warnings: list[str] = field(default_factory=list)   # e.g. a truncated source; empty when none
    per_title: dict[str, Any] = field(default_factory=dict)  # the ladder chosen and why (per-title ladders)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CancelToken:
    """Thread-safe cancel flag; `cancel()` from any thread stops a running transcode within a second."""

    def __init__(self) -> None:
        self._flag = _engine.CancelFlag()

    def cancel(self) -> None:
        self._flag.cancel()

    @property
    def cancelled(self) -> bool:
        return self._flag.cancelled()


def _check_input(path: str | os.PathLike) -> str:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"source {str(p)!r} does not exist or is not a file", step="open")
    return str(p)


def probe(path: str | os.PathLike) -> MediaInfo:
    raw = _engine.probe(_check_input(path))
    return MediaInfo(path=str(path), format=raw["format"], duration=raw["duration"],
                     bitrate=raw["bitrate"], streams=[StreamInfo(**s) for s in raw["streams"]])


def hw_capabilities() -> dict[str, Any]:
    """What this process can use: CUDA device, NVDEC codecs, NVENC encoders (probed once)."""
    return dict(_engine.hw_capabilities())


def _throttled(cb: Optional[Callable[[Progress], None]]):
    if cb is None:
        return None
    last = [0.0]

    def call(fraction: float, frames: int, elapsed: float) -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - last[0] < PROGRESS_INTERVAL_S:
            return
        last[0] = now
        cb(Progress(fraction=min(1.0, fraction), frames=frames, elapsed=elapsed,
                    fps=frames / elapsed if elapsed > 0 else 0.0))
    return call


def _native_config(ladder: Ladder, hls: bool, hwaccel: str, threads: int,
                   thumbnails: float = 0.0, span: Optional[tuple[float, float]] = None,
                   quality: bool = False) -> dict[str, Any]:
    config = {
        "thumbnails": native_options(thumbnails),
        "quality": quality,
        "gop_seconds": ladder.gop_seconds,
        "segment_seconds": ladder.segment_seconds,
        "audio_bitrate": ladder.audio.bitrate,
        "audio_tracks": ladder.audio.tracks if isinstance(ladder.audio.tracks, str) else list(ladder.audio.tracks),
        "hls": hls,
        "hwaccel": hwaccel,
        "threads": threads,
        "rungs": [{"name": r.name, "height": r.height, "codec": r.codec, "bitrate": r.bitrate,
                   "crf": -1 if r.crf is None else r.crf, "preset": r.preset, "profile": r.profile,
                   "maxrate": r.maxrate, "bufsize": r.bufsize} for r in ladder.rungs],
    }
    if span is not None:
        config["start"], config["end"] = span
    return config


def _time_range(start: Optional[float], end: Optional[float]) -> Optional[tuple[float, float]]:
    """(start, end) for the engine, end 0 meaning the source's end; None for the whole source."""
    if start is None and end is None:
        return None
    first = float(start or 0.0)
    if first < 0 or (end is not None and end <= first):
        raise ValueError(f"a time range needs 0 <= start < end, not start={start}, end={end}")
    return first, float(end) if end is not None else 0.0


def _prepare_output_dir(out_dir: Path) -> Path:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".framepress-", dir=out_dir))
    except OSError as exc:
        raise OutputError(f"cannot write to output directory {str(out_dir)!r}: {exc.strerror}",
                          step="prepare output") from None


def _move_into_place(staging: Path, out_dir: Path) -> None:
    """Replace earlier outputs of the same names; each rename is atomic on one filesystem."""
    try:
        for item in sorted(staging.iterdir()):
            target = out_dir / item.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(item, target)
    except OSError as exc:
        raise OutputError(f"cannot move outputs into {str(out_dir)!r}: {exc.strerror}",
                          step="publish outputs") from None


def _run_native(src: str, staging: Path, lad: Ladder, hls: bool, hwaccel: str, threads: int,
                progress, token: CancelToken, thumbnails: float,
                span: Optional[tuple[float, float]] = None, quality: bool = False) -> dict[str, Any]:
    def run(mode: str) -> dict[str, Any]:
        return _engine.transcode(src, str(staging),
                                 _native_config(lad, hls, mode, threads, thumbnails, span, quality), progress,
                                 token._flag)

    try:
        return run(hwaccel)
    except GpuError as exc:
        # A GPU failure (out of memory, session limits, a lost context) under "auto": redo the job
        # on the CPU from scratch rather than fail it.
        if hwaccel != "auto":
            raise
        for item in staging.iterdir():
            shutil.rmtree(item) if item.is_dir() else item.unlink()
        raw = run("cpu")
        raw["hwaccel_reason"] = f"GPU path failed ({exc}); re-ran on the CPU"
        return raw


def _dash_videos(renditions: list[Rendition]) -> list[VideoStream]:
    return [VideoStream(id=r.name, playlist=Path(r.playlist), width=r.width, height=r.height,
                        codecs=r.codec_string) for r in renditions]


def _dash_audios(audio: list[AudioRendition]) -> list[AudioStream]:
    return [AudioStream(id=a.name, playlist=Path(a.playlist), codecs=a.codec_string, sample_rate=a.sample_rate,
                        channels=a.channels, language=a.language or "und", default=a.default) for a in audio]


def transcode(source: str | os.PathLike, out_dir: str | os.PathLike, ladder: LadderLike = "default",
              *, hls: bool = False, dash: bool = False, thumbnails: float = 0.0, quality: bool = False,
              hwaccel: str = "auto",
              on_progress: Optional[Callable[[Progress], None]] = None,
              cancel: Optional[CancelToken] = None, threads: int = 0,
              start: Optional[float] = None, end: Optional[float] = None) -> TranscodeResult:
    """Transcode `source` to every rung of `ladder` under `out_dir` (see DESIGN §2).

    `dash=True` adds `dash/manifest.mpd` over the same CMAF segments as HLS, so it writes HLS too.
    `thumbnails=N` (seconds) writes `thumbs/`: a poster, sprite sheets of a tile every N seconds
    and `thumbnails.vtt`, from the frames decoded for the rungs.
    With `start` and/or `end` (seconds from the source's first video frame), only the frames whose
    timestamps fall in [start, end) are encoded, video only, on the source's own timeline and
    keyframe grid: the outputs of adjacent ranges line up segment for segment.
    `quality=True` measures each rendition's PSNR and SSIM against the source at its size.
    """
    if thumbnails < 0:
        raise ValueError(f"thumbnails must be seconds between tiles (0: none), not {thumbnails!r}")
    hls = hls or dash
    span = _time_range(start, end)
    if hwaccel not in HWACCEL_MODES:
        raise HardwareError(f"hwaccel must be one of {', '.join(HWACCEL_MODES)}, not {hwaccel!r}")
    lad = load_ladder(ladder)
    src = _check_input(source)
    out = Path(out_dir)
    token = cancel or CancelToken()
    per_title: dict[str, Any] = {}
    if lad.per_title:
        from framepress.pertitle import choose_ladder
        started = time.monotonic()
        choice = choose_ladder(src, lad, cancel=token)
        lad, per_title = choice.ladder, choice.to_dict()
        per_title["seconds"] = round(time.monotonic() - started, 4)
    staging = _prepare_output_dir(out)
    try:
        raw = _run_native(src, staging, lad, hls, hwaccel, threads, _throttled(on_progress), token, thumbnails,
                          span, quality)
        started = time.monotonic()
        renditions = [Rendition(**r) for r in raw["renditions"]]
        audio_renditions = [AudioRendition(**a) for a in raw["audio_renditions"]]
        if hls:
            write_master_playlist(staging / "hls", renditions, raw["fps"], audio_renditions)
        thumbs = raw["thumbnails"]
        if thumbnails:
            write_vtt(staging / "thumbs", thumbs)
        if dash:
            write_dash_manifest(staging / "dash", staging / "hls", _dash_videos(renditions),
                                _dash_audios(audio_renditions), raw["fps"])
        seconds = dict(raw["seconds"])
        if per_title:
            seconds["analysis"] = per_title["seconds"]
        _move_into_place(staging, out)
        seconds["publish"] = time.monotonic() - started
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for r in renditions:
        r.path = str(out / Path(r.path).name)
        if r.playlist:
            r.playlist = str(out / "hls" / Path(r.playlist).name)
    for a in audio_renditions:
        a.playlist = str(out / "hls" / Path(a.playlist).name)
    thumbs_dir = out / "thumbs"
    published_thumbs = Thumbnails(
        poster=str(thumbs_dir / "poster.jpg"), sprites=[str(thumbs_dir / Path(p).name) for p in thumbs["sprites"]],
        vtt=str(thumbs_dir / "thumbnails.vtt"), tile_width=thumbs["tile_width"], tile_height=thumbs["tile_height"],
        columns=thumbs["columns"], rows=thumbs["rows"], times=list(thumbs["times"])) if thumbnails else None
    return TranscodeResult(renditions=renditions, hwaccel_used=raw["hwaccel_used"],
                           hwaccel_reason=raw["hwaccel_reason"], seconds=seconds,
                           decoded_frames=raw["decoded_frames"],
                           hls_master=str(out / "hls" / "master.m3u8") if hls else "",
                           dash_manifest=str(out / "dash" / "manifest.mpd") if dash else "",
                           audio_renditions=audio_renditions, thumbnails=published_thumbs,
                           source=raw.get("source", {}), audio=AudioTrack(**raw["audio"]),
                           warnings=list(raw.get("warnings", [])), per_title=per_title)


__all__ = ["probe", "transcode", "hw_capabilities", "CancelToken", "Progress", "MediaInfo",
           "StreamInfo", "Rendition", "AudioTrack", "TranscodeResult", "Cancelled"]
