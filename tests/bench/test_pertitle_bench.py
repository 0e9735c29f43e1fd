"""The per-title bench: Bjøntegaard deltas, one source measured end to end, its report section."""
from __future__ import annotations

import math
import subprocess

import pytest

from framepress.bench.bdrate import bd_psnr, bd_rate, hull
from framepress.bench.pertitle_mode import measure_source, summarise
from framepress.bench.pertitle_report import HEADING, write_section

from conftest import FFMPEG

FIXED = [(800e3, 38.0), (1.5e6, 41.0), (3e6, 44.0), (5e6, 46.0)]


def test_the_same_curve_has_no_delta():
    assert bd_rate(FIXED, FIXED) == pytest.approx(0.0, abs=1e-9)
    assert bd_psnr(FIXED, FIXED) == pytest.approx(0.0, abs=1e-9)


def test_half_the_bits_for_the_same_quality_is_minus_fifty_percent():
    half = [(r / 2, q) for r, q in FIXED]
    assert bd_rate(FIXED, half) == pytest.approx(-50.0)
    # At equal bits the cheaper curve is better by the rise of quality over one halving of rate.
    assert bd_psnr(FIXED, half) > 0


def test_a_curve_one_db_lower_at_equal_bits():
    lower = [(r, q - 1.0) for r, q in FIXED]
    assert bd_psnr(FIXED, lower) == pytest.approx(-1.0)
    assert bd_rate(FIXED, lower) > 0


def test_no_delta_without_two_points_or_an_overlap():
    assert bd_rate(FIXED, [(1e6, 40.0)]) is None
    assert bd_psnr(FIXED, [(10e6, 60.0), (20e6, 61.0)]) is None
    assert bd_rate(FIXED, [(10e3, 20.0), (20e3, 21.0)]) is None


def test_the_hull_keeps_only_rungs_that_raise_quality():
    assert hull([(3e6, 40.0), (1e6, 41.0), (2e6, 39.0), (4e6, math.inf)]) == [(1e6, 41.0)]


SMALL_FIXED = {"name": "fixed", "rungs": [
    {"name": "180p", "height": 180, "bitrate": 400000, "preset": "veryfast"},
    {"name": "90p", "height": 90, "bitrate": 150000, "preset": "veryfast"}]}
SMALL_AUTO = {**SMALL_FIXED, "name": "auto", "per_title": True,
              "rungs": [{**r, "min_bitrate": 20000} for r in SMALL_FIXED["rungs"]]}


@pytest.mark.timeout(120)
def test_one_source_measured_end_to_end(tmp_path):
    src = tmp_path / "slides.mp4"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=320x180:rate=1,fps=30",
                    "-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "14", "-pix_fmt", "yuv420p",
                    str(src)], check=True)
    s = measure_source("slides", "easy", src, tmp_path / "work", fixed_ladder=SMALL_FIXED,
                       per_title_ladder=SMALL_AUTO)
    assert [r["name"] for r in s["fixed"]["rungs"]] == ["180p", "90p"]
    assert [r["name"] for r in s["per_title"]["rungs"]] == ["180p", "90p"]
    assert all(20 < r["psnr"] < 80 for r in s["fixed"]["rungs"] + s["per_title"]["rungs"])
    # Slides need far fewer bits than the fixed ladder gives them.
    assert s["bits"]["per_title"] < 0.5 * s["bits"]["fixed"]
    assert s["analysis"]["wall_s"] > 0 and s["analysis"]["whole_source"] in (True, False)
    summary = summarise([s])
    assert summary["hard_bd_psnr_min_db"] is None
    assert not (tmp_path / "work").exists()

    out = tmp_path / "report"
    out.mkdir()
    (out / "RESULTS.md").write_text(f"# results\n\n## Engine\n\nkept\n\n{HEADING} (old)\n\nstale\n\n## GPU\n\nkept too\n")
    res = {"finished_at": "now", "settings": {"size": "320x180", "fps": 30, "seconds": 2, "fixed": "fixed",
                                              "per_title": "auto"},
           "sources": [s], "summary": summary}
    text = write_section(res, out, "framepress bench pertitle").read_text()
    assert "stale" not in text and text.count(HEADING) == 1
    assert text.index("## Engine") < text.index(HEADING) < text.index("## GPU") and "kept too" in text
    assert "| slides | 180p |" in text and (out / "pertitle_slides.png").stat().st_size > 0
