"""Awkward sources: VFR, odd sizes, portrait and rotated, 10-bit 4:2:2, no audio, tiny, other codecs."""
from __future__ import annotations

import re
import subprocess

import pytest

import framepress
from conftest import FFMPEG, ffprobe_json, keyframe_times, make_clip, video_frames

ONE_RUNG = {"name": "t", "gop_seconds": 1, "segment_seconds": 2,
            "rungs": [{"name": "240p", "height": 240, "bitrate": 400_000, "preset": "ultrafast"}]}


def stream(path, entries="stream=width,height,pix_fmt,sample_aspect_ratio,display_aspect_ratio"):
    return ffprobe_json(path, "-select_streams", "v:0", "-show_entries", entries)["streams"][0]


def test_variable_frame_rate_keeps_timestamps(media_dir, tmp_path):
    # Frames at 30 fps for 1 s, then 10 fps for 1 s: the output keeps every timestamp.
    src = make_clip(media_dir / "vfr.mkv", seconds=2, size="426x240", vf="select='lt(t,1)+not(mod(n,3))'",
                    extra_out=["-fps_mode", "vfr"])
    src_times = [round(float(f["pts_time"]), 3) for f in video_frames(src)]
    assert 40 <= len(src_times) <= 41
    r = framepress.transcode(src, tmp_path, ONE_RUNG).renditions[0]
    out_times = [round(float(f["pts_time"]), 3) for f in video_frames(r.path)]
    assert r.frames == len(src_times) == len(out_times)
    offset = out_times[0] - src_times[0]
    assert [round(t - offset, 2) for t in out_times] == [round(t, 2) for t in src_times]


def test_odd_dimensions_give_even_sizes_with_aspect_kept(media_dir, tmp_path):
    src = make_clip(media_dir / "odd.mp4", seconds=1, size="1366x769", audio=False, pix_fmt="yuv444p")
    ladder = {**ONE_RUNG, "rungs": [{"name": "360p", "height": 360, "bitrate": 500_000, "preset": "ultrafast"}]}
    r = framepress.transcode(src, tmp_path, ladder).renditions[0]
    assert (r.width, r.height) == (640, 360)
    assert r.width % 2 == 0 and r.height % 2 == 0
    assert abs(r.width / r.height - 1366 / 769) < 0.01


def test_portrait_source_scales_its_short_side(media_dir, tmp_path):
    src = make_clip(media_dir / "portrait.mp4", seconds=1, size="720x1280")
    r = framepress.transcode(src, tmp_path, ONE_RUNG).renditions[0]
    assert (r.width, r.height) == (240, 426)


def test_rotation_metadata_is_kept(media_dir, tmp_path):
    plain = make_clip(media_dir / "plain.mp4", seconds=1, size="640x360")
    rotated = media_dir / "rotated.mp4"
    import subprocess
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-i", str(plain), "-metadata:s:v:0", "rotate=90",
                    "-c", "copy", str(rotated)], check=True)
    assert framepress.probe(rotated).video.rotation in (90.0, -90.0)
    r = framepress.transcode(rotated, tmp_path, ONE_RUNG).renditions[0]
    assert framepress.probe(r.path).video.rotation == framepress.probe(rotated).video.rotation
    assert (r.width, r.height) == (426, 240)


def test_anamorphic_sample_aspect_ratio_is_kept(media_dir, tmp_path):
    src = make_clip(media_dir / "anamorphic.mp4", seconds=1, size="720x480", vf="setsar=32/27")
    r = framepress.transcode(src, tmp_path, ONE_RUNG).renditions[0]
    s = stream(r.path)
    assert s["sample_aspect_ratio"] == "32:27"
    assert (r.width, r.height) == (360, 240)


def test_ten_bit_422_becomes_8_bit_420(media_dir, tmp_path):
    src = make_clip(media_dir / "10bit422.mkv", seconds=1, size="640x360", pix_fmt="yuv422p10le",
                    extra_video=["-profile:v", "high422"])
    assert stream(src)["pix_fmt"] == "yuv422p10le"
    r = framepress.transcode(src, tmp_path, ONE_RUNG).renditions[0]
    assert stream(r.path)["pix_fmt"] == "yuv420p"
    assert r.frames == 30


def test_source_without_audio(media_dir, tmp_path):
    src = make_clip(media_dir / "silent.mp4", seconds=1, audio=False)
    r = framepress.transcode(src, tmp_path, ONE_RUNG).renditions[0]
    kinds = [s["codec_type"] for s in ffprobe_json(r.path, "-show_entries", "stream=codec_type")["streams"]]
    assert kinds == ["video"] and not r.has_audio


def test_source_smaller_than_every_rung_gets_one_rendition_at_its_size(media_dir, tmp_path):
    src = make_clip(media_dir / "tiny.mp4", seconds=1, size="160x90")
    result = framepress.transcode(src, tmp_path, "default")
    assert [(r.name, r.width, r.height) for r in result.renditions] == [("90p", 160, 90)]
    assert len(video_frames(result.renditions[0].path)) == 30


@pytest.mark.parametrize("codec,pattern,name", [("hevc", r"hvc1\.1\.6\.L(\d+)\.90", "hevc"),
                                                ("av1", r"av01\.0\.(\d\d)M\.08", "av1")])
def test_hevc_and_av1_rungs(media_dir, tmp_path, codec, pattern, name):
    src = make_clip(media_dir / "codec_src.mp4", seconds=2, size="426x240")
    ladder = {"name": "c", "gop_seconds": 1, "segment_seconds": 1, "rungs": [
        {"name": "240p", "height": 240, "codec": codec, "bitrate": 300_000, "preset": "ultrafast" if codec == "hevc" else "12"},
        {"name": "120p", "height": 120, "codec": codec, "crf": 35, "preset": "ultrafast" if codec == "hevc" else "12"}]}
    result = framepress.transcode(src, tmp_path, ladder, hls=True)
    for r in result.renditions:
        s = stream(r.path, "stream=codec_name,level")
        assert s["codec_name"] == name
        assert r.frames == len(video_frames(r.path)) == 60
        # The HLS CODECS string carries the level the encoder actually signalled.
        level = re.fullmatch(pattern, r.codec_string)
        assert level and int(level.group(1)) == s["level"], (r.codec_string, s)
    assert keyframe_times(result.renditions[0].path) == keyframe_times(result.renditions[1].path)
    assert keyframe_times(result.renditions[0].path)[:2] == pytest.approx([0.0, 1.0], abs=0.02)


def _psnr_against_ffmpeg_scale(src, rendition, width, height):
    """PSNR of a rendition against FFmpeg's own `scale` (swscale bicubic) of the source."""
    graph = f"[0:v]scale={width}:{height}:flags=bicubic[a];[a][1:v]psnr"
    out = subprocess.run([FFMPEG, "-i", str(src), "-i", str(rendition), "-lavfi", graph, "-f", "null", "-"],
                         capture_output=True, text=True, check=True).stderr
    return float(out.rsplit("average:", 1)[1].split()[0])


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv444p"])
def test_scaled_pixels_match_ffmpegs_bicubic_scale(media_dir, tmp_path, pix_fmt):
    # A lossless rung shows the scaler's own pixels: zimg for 8-bit 4:2:0 sources, swscale for the
    # others; both must give FFmpeg's `scale` filter's bicubic picture, chroma siting included.
    src = make_clip(media_dir / f"scale-{pix_fmt}.mkv", seconds=1, size="1280x720", audio=False, pix_fmt=pix_fmt,
                    vf="noise=alls=12:allf=t+u", extra_video=["-qp", "0"])
    ladder = {**ONE_RUNG, "rungs": [{"name": "360p", "height": 360, "crf": 0, "preset": "ultrafast"}]}
    r = framepress.transcode(src, tmp_path, ladder).renditions[0]
    assert _psnr_against_ffmpeg_scale(src, r.path, 640, 360) > 50
