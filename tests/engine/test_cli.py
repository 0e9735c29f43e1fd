"""`framepress probe` and `framepress transcode`: JSON shapes, exit codes, one-line errors."""
from __future__ import annotations

import json
import subprocess
import sys

FRAMEPRESS = [sys.executable, "-m", "framepress"]


def run(*args):
    return subprocess.run([*FRAMEPRESS, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_probe_json(clip):
    proc = run("probe", clip, "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    video = next(s for s in info["streams"] if s["type"] == "video")
    assert (video["width"], video["height"], video["codec"]) == (640, 360, "h264")
    assert abs(info["duration"] - 2.0) < 0.1


def test_transcode_json_shape(clip, tmp_path):
    ladder = tmp_path / "ladder.json"
    ladder.write_text(json.dumps({"name": "one", "rungs": [{"name": "180p", "height": 180, "bitrate": 200000,
                                                            "preset": "ultrafast"}]}))
    proc = run("transcode", clip, "-o", tmp_path / "out", "--ladder", ladder, "--hls", "--hwaccel", "cpu", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    [r] = result["renditions"]
    assert {"name", "path", "width", "height", "frames", "bytes", "bitrate"} <= set(r)
    assert (r["name"], r["width"], r["height"], r["frames"]) == ("180p", 320, 180, 60)
    assert result["hwaccel_used"] == "cpu" and result["seconds"]["total"] > 0
    assert (tmp_path / "out" / "hls" / "master.m3u8").is_file()


def test_human_output_is_a_table(clip, tmp_path):
    proc = run("transcode", clip, "-o", tmp_path, "--ladder", "default")
    assert proc.returncode == 0, proc.stderr
    assert "360p" in proc.stdout and "frames" in proc.stdout


def test_dash_and_thumbnails_flags(clip, tmp_path):
    proc = run("transcode", clip, "-o", tmp_path, "--ladder", "default", "--dash", "--thumbnails", "0.5")
    assert proc.returncode == 0, proc.stderr
    assert f"DASH manifest: {tmp_path / 'dash' / 'manifest.mpd'}" in proc.stdout
    assert "1 sprite sheet(s)" in proc.stdout
    assert (tmp_path / "dash" / "manifest.mpd").is_file() and (tmp_path / "hls" / "master.m3u8").is_file()
    assert (tmp_path / "thumbs" / "thumbnails.vtt").read_text().count("#xywh=") == 4


def test_bad_input_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    for args in (("probe", bad), ("transcode", bad, "-o", tmp_path / "o"), ("transcode", tmp_path / "none.mp4", "-o", tmp_path),
                 ("transcode", bad, "-o", tmp_path, "--ladder", "nope"), ("transcode", bad, "-o", tmp_path, "--hwaccel", "x"),
                 ("transcode", bad)):
        proc = run(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_cuda_without_a_gpu_exits_2(clip, tmp_path):
    import framepress
    if framepress.hw_capabilities()["cuda"]:
        import pytest
        pytest.skip("a CUDA device is present")
    proc = run("transcode", clip, "-o", tmp_path, "--hwaccel", "cuda")
    assert proc.returncode == 2
    assert "cuda" in proc.stderr.lower() and "Traceback" not in proc.stderr


def test_unwritable_output_exits_1(clip, tmp_path):
    afile = tmp_path / "file"
    afile.write_text("x")
    proc = run("transcode", clip, "-o", afile / "out")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "output" in proc.stderr


def test_quality_flag_shows_psnr_and_ssim(clip, tmp_path):
    ladder = tmp_path / "ladder.json"
    ladder.write_text(json.dumps({"name": "one", "rungs": [{"name": "180p", "height": 180, "bitrate": 200000,
                                                            "preset": "ultrafast"}]}))
    proc = run("transcode", clip, "-o", tmp_path / "out", "--ladder", ladder, "--quality", "--hwaccel", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "PSNR" in proc.stdout and " dB" in proc.stdout
    proc = run("transcode", clip, "-o", tmp_path / "out", "--ladder", ladder, "--quality", "--hwaccel", "cpu", "--json")
    [r] = json.loads(proc.stdout)["renditions"]
    assert 25 < r["psnr"] < 70 and 0.5 < r["ssim"] <= 1
