"""The PyAV peer: decode once, encode every rung, as a PyAV user would write it.

Run as a script (`python pyav_ladder.py SRC OUT_DIR PLAN_JSON`, from any directory) in its own process, so the bench
measures it like every other system. Scaling uses `VideoFrame.reformat`'s default interpolation,
which is what PyAV users get. Audio is decoded once and encoded per output, like the CLI peers.
"""
from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path

import av

# Run as a script (its directory is first on sys.path), so the package's framepress/__init__ and
# the native engine are not loaded into this peer's process: its memory is PyAV's alone.
from encoders import encoder_options  # noqa: E402


def _open_output(path: Path, rung: dict, rate: Fraction, audio_in, audio_bitrate: int):
    name, options = encoder_options(rung)
    out = av.open(str(path), "w", options={"movflags": "+faststart"})
    video = out.add_stream(name, rate=rate)
    video.width, video.height, video.pix_fmt = rung["width"], rung["height"], "yuv420p"
    if "b" in options:
        video.bit_rate = int(options.pop("b"))
    video.codec_context.gop_size = int(options.pop("g"))
    if rung["codec"] == "hevc":
        video.codec_context.codec_tag = "hvc1"
    video.options = options
    audio = None
    if audio_in is not None:
        audio = out.add_stream("aac", rate=audio_in.codec_context.sample_rate)
        audio.bit_rate = audio_bitrate
        audio.layout = audio_in.codec_context.layout
    return out, video, audio


def main(src: str, out_dir: str, plan_json: str) -> None:
    plan = json.loads(plan_json)
    with av.open(src) as inp:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        ain = inp.streams.audio[0] if inp.streams.audio and plan["has_audio"] else None
        rate = vin.average_rate or Fraction(30)
        outputs = [_open_output(Path(out_dir) / f"{r['name']}.mp4", r, rate, ain, plan["audio_bitrate"])
                   for r in plan["rungs"]]
        streams = [vin] + ([ain] if ain is not None else [])
        for packet in inp.demux(*streams):
            for frame in packet.decode():
                if packet.stream.type == "video":
                    for (out, video, _), rung in zip(outputs, plan["rungs"]):
                        scaled = frame.reformat(width=rung["width"], height=rung["height"],
                                                format="yuv420p")
                        scaled.pts, scaled.time_base = frame.pts, frame.time_base
                        out.mux(video.encode(scaled))
                else:
                    for out, _, audio in outputs:
                        frame.pts = None    # let the encoder number samples itself
                        out.mux(audio.encode(frame))
        for out, video, audio in outputs:
            out.mux(video.encode(None))
            if audio is not None:
                out.mux(audio.encode(None))
            out.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])
