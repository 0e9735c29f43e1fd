"""Untrusted input: decoders outside the accepted list, oversized pictures, truncated uploads and
packets a decoder rejects."""
from __future__ import annotations

import json
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

import framepress
from framepress.errors import InputError
from conftest import FFMPEG, FFPROBE, ffprobe_json, make_clip
from support.h264_sps import declare_size

SMALL = {"name": "small", "gop_seconds": 1, "segment_seconds": 1,
         "rungs": [{"name": "90p", "height": 90, "bitrate": 100_000, "preset": "ultrafast"}]}

# Transcodes one file in a child process and reports the outcome with the child's peak memory.
MEASURED_RUN = """
import json, resource, sys, tempfile
import framepress
try:
    framepress.transcode(sys.argv[1], tempfile.mkdtemp(), json.loads(sys.argv[2]))
    outcome = "ok"
except framepress.errors.FramepressError as exc:
    outcome = f"{type(exc).__name__}: {exc}"
print(json.dumps({"outcome": outcome, "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measured_run(src) -> dict:
    run = subprocess.run([sys.executable, "-c", MEASURED_RUN, str(src), json.dumps(SMALL)], capture_output=True,
                         text=True, check=True)
    return json.loads(run.stdout.splitlines()[-1])


def ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", *args], check=True)


@pytest.fixture(scope="module")
def tiny_h264(media_dir):
    """One second of a flat 32x32 picture, H.264 baseline, as an Annex B stream."""
    path = media_dir / "tiny32.h264"
    ffmpeg("-f", "lavfi", "-i", "color=gray:size=32x32:rate=10:duration=1", "-c:v", "libx264", "-profile:v",
           "baseline", "-preset", "ultrafast", "-bsf:v", "h264_mp4toannexb", "-f", "h264", str(path))
    return path.read_bytes()


def test_oversized_picture_is_refused_before_it_is_allocated(tiny_h264, media_dir):
    raw = media_dir / "huge.h264"
    raw.write_bytes(declare_size(tiny_h264, 16384, 8192))
    src = media_dir / "huge.mkv"
    ffmpeg("-i", str(raw), "-c", "copy", str(src))
    stream = ffprobe_json(src, "-select_streams", "v:0", "-show_entries", "stream=width,height")["streams"][0]
    assert (stream["width"], stream["height"]) == (16384, 8192)
    assert src.stat().st_size < 4096
    # Decoded, each such frame is 200 MB; the rung queues hold several. The engine refuses the
    # size before decoding (or probing) a single one: it peaks below a small clip's transcode
    # plus one such frame.
    report = measured_run(src)
    assert report["outcome"].startswith("InputError") and "16384x8192" in report["outcome"], report
    baseline = measured_run(make_clip(media_dir / "small32.mkv", seconds=1, size="32x32", audio=False))
    assert baseline["outcome"] == "ok", baseline
    assert report["max_rss_mb"] < baseline["max_rss_mb"] + 200, (report, baseline)


def test_container_tables_declaring_gigabytes_are_not_allocated(media_dir):
    """Found by the fuzz target: a fragmented MP4's run box declaring 80 million samples made
    FFmpeg allocate and fill gigabytes of index for a file of 5 KB."""
    fragmented = media_dir / "fragmented.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=1", "-c:v", "libx264", "-preset", "ultrafast",
           "-movflags", "frag_keyframe+empty_moov", str(fragmented))
    data = bytearray(fragmented.read_bytes())
    trun = data.index(b"trun")
    assert int.from_bytes(data[trun + 8:trun + 12], "big") == 10  # the run's sample count: every frame
    data[trun + 8:trun + 12] = (80_000_000).to_bytes(4, "big")
    src = media_dir / "trun80m.mp4"
    src.write_bytes(bytes(data))
    assert src.stat().st_size < 8192
    report = measured_run(src)
    assert report["outcome"].startswith("InputError"), report
    baseline = measured_run(fragmented)
    assert baseline["outcome"] == "ok", baseline
    assert report["max_rss_mb"] < baseline["max_rss_mb"] + 200, (report, baseline)


def test_picture_too_large_for_ffmpeg_itself_is_an_input_error(tiny_h264, media_dir):
    src = media_dir / "huge16k.h264"
    src.write_bytes(declare_size(tiny_h264, 16384, 16384))
    probe = subprocess.run([FFPROBE, "-v", "error", "-show_streams", str(src)], capture_output=True, text=True)
    assert "16384x16384" in probe.stderr  # FFmpeg reads the size and calls it invalid
    with pytest.raises(InputError):
        framepress.transcode(src, media_dir / "out16k", SMALL)


@pytest.mark.parametrize("codec,container", [("msvideo1", "avi"), ("flashsv", "flv")])
def test_video_codec_outside_the_accepted_list_is_an_input_error(codec, container, media_dir, tmp_path):
    src = media_dir / f"exotic-{codec}.{container}"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x96:rate=10:duration=1", "-c:v", codec, str(src))
    assert ffprobe_json(src, "-show_entries", "stream=codec_name")["streams"][0]["codec_name"] == codec
    assert framepress.probe(src).video.codec == codec  # probing still describes it
    with pytest.raises(InputError, match=f"video codec {codec} is not accepted") as info:
        framepress.transcode(src, tmp_path, SMALL)
    assert info.value.step == "open decoder"
    assert list(tmp_path.iterdir()) == []


def test_audio_codec_outside_the_accepted_list_is_dropped_with_a_warning(media_dir, tmp_path):
    src = media_dir / "adpcm.avi"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x96:rate=10:duration=1", "-f", "lavfi", "-i",
           "sine=duration=1", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "adpcm_ms", str(src))
    codecs = [s["codec_name"] for s in ffprobe_json(src, "-show_entries", "stream=codec_name")["streams"]]
    assert codecs == ["h264", "adpcm_ms"]
    result = framepress.transcode(src, tmp_path, SMALL)
    assert result.decoded_frames == 10
    assert [w for w in result.audio.warnings if "adpcm_ms" in w and "not accepted" in w], result.audio.warnings
    assert result.audio.index == -1
    out = ffprobe_json(result.renditions[0].path, "-show_entries", "stream=codec_type")["streams"]
    assert [s["codec_type"] for s in out] == ["video"]


@pytest.fixture(scope="module")
def ten_seconds(media_dir):
    return make_clip(media_dir / "ten.mp4", seconds=10, size="320x180", extra_out=["-movflags", "+faststart"])


def cut(src, dst, fraction):
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def test_truncated_mp4_succeeds_with_a_truncation_warning(ten_seconds, media_dir, tmp_path):
    src = cut(ten_seconds, media_dir / "cut.mp4", 0.55)
    probe = ffprobe_json(src, "-select_streams", "v:0", "-count_packets",
                         "-show_entries", "stream=nb_frames,nb_read_packets")["streams"][0]
    assert int(probe["nb_frames"]) == 300 and int(probe["nb_read_packets"]) < 200  # the index outlives the data
    result = framepress.transcode(src, tmp_path, SMALL)
    assert result.decoded_frames < 200
    assert len(result.warnings) == 1 and "truncated" in result.warnings[0]
    assert f"has {probe['nb_read_packets']} of the 300 video frames" in result.warnings[0]


def test_truncated_matroska_is_caught_by_its_declared_duration(ten_seconds, media_dir, tmp_path):
    whole = media_dir / "ten.mkv"
    ffmpeg("-i", str(ten_seconds), "-c", "copy", str(whole))
    src = cut(whole, media_dir / "cut.mkv", 0.5)
    assert float(ffprobe_json(src, "-show_entries", "format=duration")["format"]["duration"]) == pytest.approx(10, abs=0.1)
    result = framepress.transcode(src, tmp_path, SMALL)
    assert result.decoded_frames < 170
    assert len(result.warnings) == 1 and "of the 10.0 s its header declares" in result.warnings[0]


def test_complete_sources_have_no_warnings(ten_seconds, media_dir, tmp_path):
    for src in (ten_seconds, media_dir / "ten.mkv"):
        if not src.exists():
            ffmpeg("-i", str(ten_seconds), "-c", "copy", str(src))
        result = framepress.transcode(src, tmp_path / src.suffix[1:], SMALL)
        assert result.decoded_frames == 300 and result.warnings == []


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_stream_with_broken_frames(path, broken: set[int], how: str, frames: int = 40):
    """An MKV of PNG frames (frame-threaded decoding) in which the frames in `broken` are corrupt."""
    raw = subprocess.run([FFMPEG, "-loglevel", "error", "-f", "lavfi", "-i",
                          f"testsrc2=size=160x90:rate=10:duration={frames / 10}", "-c:v", "png", "-f", "image2pipe",
                          "-"], check=True, capture_output=True).stdout
    images = [PNG_SIGNATURE + p for p in raw.split(PNG_SIGNATURE)[1:]]
    assert len(images) == frames
    for i in broken:
        img = bytearray(images[i])
        if how == "header":      # IHDR width 0: the decoder says "invalid data"
            img[16:20] = bytes(4)
            img[29:33] = zlib.crc32(bytes(img[12:29])).to_bytes(4, "big")
        else:                     # garbage in the compressed pixels: zlib fails
            at = img.find(b"IDAT") + 6
            img[at:at + 32] = bytes(b ^ 0x5A for b in img[at:at + 32])
        images[i] = bytes(img)
    stream = path.with_suffix(".png")
    stream.write_bytes(b"".join(images))
    ffmpeg("-f", "png_pipe", "-framerate", "10", "-i", str(stream), "-c", "copy", str(path))
    return path


@pytest.mark.parametrize("threads", [4, 8])
@pytest.mark.parametrize("how", ["header", "pixels"])
def test_rejected_packets_cost_no_good_frame(how, threads, media_dir, tmp_path):
    """Every good packet is decoded, however the decoder reports the bad ones around it: near the
    start, in the middle and among the last frames, which come out while the decoder drains."""
    broken = {10, 20, 37, 38}
    src = png_stream_with_broken_frames(media_dir / f"png-{how}.mkv", broken, how)
    probe = ffprobe_json(src, "-select_streams", "v:0", "-count_packets", "-show_entries",
                         "stream=codec_name,nb_read_packets")["streams"][0]
    assert probe == {"codec_name": "png", "nb_read_packets": "40"}
    check = subprocess.run([FFMPEG, "-v", "error", "-threads", "1", "-i", str(src), "-f", "null", "-"],
                           capture_output=True, text=True)
    assert check.stderr.count("Error while decoding") == len(broken)  # FFmpeg's own CLI rejects exactly these
    result = framepress.transcode(src, tmp_path, SMALL, threads=threads)
    assert result.decoded_frames == 40 - len(broken)
    assert result.renditions[0].frames == 40 - len(broken)


def test_colour_tag_naming_nothing_is_treated_as_unspecified(media_dir, tmp_path):
    """Found by the fuzz target: an MPEG-2 sequence display extension saying transfer 255 reached
    C++ as an enum value outside its range, and every output was tagged with it."""
    good = media_dir / "tagged.m2v"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x96:rate=25:duration=1", "-c:v", "mpeg2video",
           "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709", str(good))
    data = bytearray(good.read_bytes())
    # Sequence display extension: start code, id 2 with the colour description flag, then
    # primaries, transfer and matrix (BT.709 = 1 each).
    marker = b"\x00\x00\x01\xb5"
    at = [i for i in range(len(data)) if data.startswith(marker, i) and data[i + 4] >> 4 == 2]
    assert at and all(data[i + 5:i + 8] == b"\x01\x01\x01" for i in at)
    for i in at:
        data[i + 6] = 0xFF
    src = media_dir / "transfer255.m2v"
    src.write_bytes(bytes(data))
    tags = "stream=color_primaries,color_transfer"
    assert ffprobe_json(good, "-show_entries", tags)["streams"][0]["color_transfer"] == "bt709"
    patched = ffprobe_json(src, "-show_entries", tags)["streams"][0]
    assert patched["color_primaries"] == "bt709" and patched.get("color_transfer", "unknown") == "unknown"
    result = framepress.transcode(src, tmp_path, SMALL)
    assert result.renditions[0].frames == 25
    rendition = result.renditions[0].path
    assert ffprobe_json(rendition, "-show_entries", tags)["streams"][0]["color_primaries"] == "bt709"  # kept
    # The MP4 colour box, where the tag would be copied as it came (the stream's own tags in the
    # H.264 headers are only readable through ffprobe, which shows 255 and "unspecified" alike).
    out = Path(rendition).read_bytes()
    nclx = out.find(b"colrnclx")
    transfer = None if nclx < 0 else int.from_bytes(out[nclx + 10:nclx + 12], "big")
    assert transfer in (None, 2), f"the output is tagged with transfer {transfer}"
