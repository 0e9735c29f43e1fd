"""Encoder settings per codec, as FFmpeg option names: what the engine sets, for every peer.

h264 → libx264, hevc → libx265, av1 → libsvtav1. Bitrate rungs get maxrate/bufsize (not SVT-AV1,
which takes a plain VBR target in the FFmpeg versions here, as in the engine); CRF rungs get
`crf`. A fixed GOP with no scene-cut or open-GOP keyframes.
"""
from __future__ import annotations

from typing import Any, Mapping

ENCODERS = {"h264": "libx264", "hevc": "libx265", "av1": "libsvtav1"}
# x264-style preset names onto SVT-AV1's numbers (higher is faster), as the engine maps them.
SVT_PRESETS = {"ultrafast": 12, "superfast": 11, "veryfast": 10, "faster": 9, "fast": 8,
               "medium": 7, "slow": 6, "slower": 5, "veryslow": 4, "placebo": 2}


def encoder_options(rung: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """(encoder name, {option: value}) for one rung (a RungJob's dict)."""
    codec, gop, crf = rung["codec"], str(rung["gop"]), rung.get("crf")
    opts: dict[str, str] = {"g": gop, "keyint_min": gop}
    if crf is None:
        opts["b"] = str(rung["bitrate"])
        if codec != "av1":
            opts.update(maxrate=str(rung["maxrate"]), bufsize=str(rung["bufsize"]))
    else:
        opts["crf"] = str(crf)
    if codec == "h264":
        opts.update(preset=rung["preset"], sc_threshold="0")
    elif codec == "hevc":
        opts.update(preset=rung["preset"],
                    **{"x265-params": f"scenecut=0:open-gop=0:log-level=error:keyint={gop}:min-keyint={gop}"})
    elif codec == "av1":
        preset = rung["preset"]
        opts["preset"] = str(SVT_PRESETS.get(preset, preset))
    else:
        raise ValueError(f"no peer encoder for codec {codec!r}")
    return ENCODERS[codec], opts


def cli_args(rung: Mapping[str, Any]) -> list[str]:
    """The same settings as ffmpeg command-line arguments for one output."""
    name, opts = encoder_options(rung)
    args = ["-c:v", name, "-pix_fmt", "yuv420p"]
    for key, value in opts.items():
        args += [f"-{'b:v' if key == 'b' else key}", value]
    if rung["codec"] == "hevc":
        args += ["-tag:v", "hvc1"]       # the MP4 sample entry players expect for HEVC
    return args
