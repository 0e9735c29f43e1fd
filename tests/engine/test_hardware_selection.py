"""Hardware selection is a pure function of the request and the probed capabilities (issue 6)."""
from __future__ import annotations

import pytest

import framepress
from framepress import _engine
from framepress.errors import HardwareError

NO_GPU = {"cuda": False, "cuda_error": "no CUDA device", "nvdec_codecs": [], "nvenc_encoders": []}
H200 = {"cuda": True, "nvdec_codecs": ["h264", "hevc", "av1"], "nvenc_encoders": []}
L4 = {"cuda": True, "nvdec_codecs": ["h264", "hevc", "av1"], "nvenc_encoders": ["h264_nvenc", "hevc_nvenc"]}


def test_cpu_is_always_cpu():
    assert _engine.choose_hwaccel("cpu", L4, "h264", ["h264"])[0] == "cpu"


def test_auto_without_gpu_falls_back_with_a_reason():
    mode, reason = _engine.choose_hwaccel("auto", NO_GPU, "h264", ["h264"])
    assert mode == "cpu" and "CUDA" in reason


def test_cuda_without_gpu_is_an_error():
    with pytest.raises(HardwareError, match="unavailable"):
        _engine.choose_hwaccel("cuda", NO_GPU, "h264", ["h264"])


def test_gpu_without_encoder_is_hybrid():
    mode, reason = _engine.choose_hwaccel("auto", H200, "h264", ["h264"])
    assert mode == "hybrid" and "no NVENC" in reason
    assert _engine.choose_hwaccel("cuda", H200, "h264", ["h264"])[0] == "hybrid"


def test_gpu_with_nvenc_for_every_rung_is_full_gpu():
    assert _engine.choose_hwaccel("auto", L4, "h264", ["h264", "hevc"])[0] == "cuda"
    # One rung codec without NVENC (no av1_nvenc on this card) keeps the CPU encoders.
    assert _engine.choose_hwaccel("cuda", L4, "h264", ["h264", "av1"])[0] == "hybrid"


def test_nvenc_option_mapping():
    rung = {"name": "a", "height": 720, "codec": "h264", "bitrate": 3_000_000, "crf": -1, "preset": "veryfast",
            "profile": "", "maxrate": 0, "bufsize": 0}
    opts = _engine.nvenc_options(rung)
    assert opts["preset"] == "p2" and opts["rc"] == "vbr" and "cq" not in opts
    assert opts["forced-idr"] == "1" and opts["no-scenecut"] == "1" and opts["strict_gop"] == "1"
    assert _engine.nvenc_options({**rung, "preset": "medium"})["preset"] == "p5"
    assert _engine.nvenc_options({**rung, "preset": "slower"})["preset"] == "p7"
    assert _engine.nvenc_options({**rung, "preset": "p3"})["preset"] == "p3"
    assert _engine.nvenc_options({**rung, "crf": 23})["cq"] == "23"
    assert _engine.nvenc_options({**rung, "profile": "high"})["profile"] == "high"


def test_gpu_scaling_chains():
    assert _engine.gpu_scale_chain(1280, 720, True) == "scale_cuda=w=1280:h=720:interp_algo=bicubic:format=yuv420p,hwdownload,format=yuv420p"
    assert _engine.gpu_scale_chain(1280, 720, False) == "scale_cuda=w=1280:h=720:interp_algo=bicubic:format=nv12"


def test_source_codec_nvdec_cannot_decode_falls_back():
    mode, reason = _engine.choose_hwaccel("auto", H200, "prores", ["h264"])
    assert mode == "cpu" and "prores" in reason
    with pytest.raises(HardwareError):
        _engine.choose_hwaccel("cuda", H200, "prores", ["h264"])


def test_probe_on_this_machine_and_result_reason(clip, tmp_path):
    caps = framepress.hw_capabilities()
    assert set(caps) == {"cuda", "cuda_error", "nvdec_codecs", "nvenc_encoders"}
    result = framepress.transcode(clip, tmp_path, {"rungs": [{"name": "a", "height": 180, "bitrate": 100000}]})
    if not caps["cuda"]:
        assert result.hwaccel_used == "cpu" and result.hwaccel_reason == caps["cuda_error"]
    else:
        assert result.hwaccel_used in ("hybrid", "cuda")


def test_extension_links_no_cuda_library():
    import subprocess
    out = subprocess.run(["ldd", _engine.__file__], capture_output=True, text=True).stdout
    assert "libcuda" not in out and "libnvidia" not in out and "libcudart" not in out
