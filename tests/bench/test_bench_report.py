"""The report and plots for the pipeline, scale and gpu modes, from result dicts."""
from __future__ import annotations

from framepress.bench import pipeline_mode
from framepress.bench.report import write_report

PNG = b"\x89PNG\r\n\x1a\n"
MACHINE = {"cpu": "Test CPU", "cores": 2, "physical_cores": 2, "memory_gib": 8.0, "gpus": [],
           "os": "Linux", "python": "3.11", "load_average": [0.1, 0.1, 0.1]}


def test_pipeline_scale_and_skipped_gpu_sections(tmp_path):
    results = {
        "pipeline": {"mode": "pipeline", "finished_at": "now", "machine": MACHINE, "tasks": 3,
                     "description": "embedded", "split_s": {"queue wait": 0.05, "database": 0.03,
                                                            "pull": 0.02, "engine": 2.0, "upload": 0.04}},
        "scale": {"mode": "scale", "finished_at": "now", "machine": MACHINE, "cores": 2, "description": "",
                  "points": [{"workers": 1, "tasks": 3, "failed": 0, "wall_s": 9.0, "tasks_per_min": 20.0,
                              "ideal_tasks_per_min": 20.0, "efficiency": 1.0},
                             {"workers": 2, "tasks": 6, "failed": 0, "wall_s": 10.0, "tasks_per_min": 36.0,
                              "ideal_tasks_per_min": 40.0, "efficiency": 0.9}]},
        "gpu": {"mode": "gpu", "finished_at": "now", "skipped": "no NVIDIA GPU found"},
    }
    text = write_report(results, tmp_path).read_text()
    assert "## Pipeline overhead" in text and "| engine | 2.000 |" in text
    assert "## Throughput against workers" in text and "| 2 | 6 | 10.00 | 36.0 | 40.0 | 0.90 | – |" in text
    assert "## GPU" in text and "Skipped: no NVIDIA GPU found" in text
    for png in ("overhead_split.png", "throughput_vs_workers.png"):
        assert (tmp_path / png).read_bytes().startswith(PNG)


def test_pipeline_split_from_events():
    status = {"status": "succeeded", "created_at": "2026-01-01T00:00:00+00:00", "events": [
        {"kind": "taken", "at": "2026-01-01T00:00:00.100000+00:00"},
        {"kind": "details_loaded", "at": "2026-01-01T00:00:00.150000+00:00"},
        {"kind": "pulled", "at": "2026-01-01T00:00:00.400000+00:00"},
        {"kind": "transcoded", "at": "2026-01-01T00:00:02.400000+00:00"},
        {"kind": "uploaded", "at": "2026-01-01T00:00:02.700000+00:00"},
        {"kind": "succeeded", "at": "2026-01-01T00:00:02.720000+00:00"}]}
    split = pipeline_mode.split_task(status)
    expected = {"queue wait": 0.1, "database": 0.07, "pull": 0.25, "engine": 2.0, "upload": 0.3}
    assert split.keys() == expected.keys()
    for k, v in expected.items():
        assert abs(split[k] - v) < 1e-6
    assert pipeline_mode.split_task({**status, "status": "failed"}) is None
