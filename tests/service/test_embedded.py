"""Embedded mode: SQLite, the database-backed queue and local files; no services at all."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from support.services import embedded_env, run_framepress

from .conftest import TINY_LADDER, ffprobe_frames

HAPPY = ["taken", "details_loaded", "pulled", "transcoded", "uploaded", "succeeded"]


@pytest.mark.timeout(120)
def test_demo_runs_the_whole_flow_without_services(tmp_path):
    proc = run_framepress(embedded_env(tmp_path, FRAMEPRESS_METRICS_PORT="0"), "demo", "--json",
                          "--seconds", "1", "--size", "640x360", check=False, timeout=110)
    assert proc.returncode == 0, proc.stderr
    st = json.loads(proc.stdout.strip().splitlines()[-1])
    assert st["status"] == "succeeded"
    assert [e["kind"] for e in st["events"]] == HAPPY
    assert (tmp_path / "data" / "framepress.db").is_file()
    master = st["events"][-1]["data"]["master_playlist"]
    assert master.startswith("file://") and Path(master[7:]).is_file()
    for r in st["renditions"]:
        assert ffprobe_frames(Path(r["uri"][7:])) == r["frames"] == 30


@pytest.mark.timeout(120)
def test_cli_submit_and_worker_on_the_local_queue(tmp_path, media_dir):
    env = embedded_env(tmp_path, FRAMEPRESS_METRICS_PORT="0")
    ladder = tmp_path / "tiny.json"
    ladder.write_text(json.dumps(TINY_LADDER))
    source = (media_dir / "clip144.mp4").as_uri()
    run = lambda *a: run_framepress(env, *a, check=False, timeout=100)
    ids = [json.loads(run("submit", source, "--ladder", str(ladder), "--json").stdout)["task_id"]
           for _ in range(2)]
    missing = json.loads(run("submit", (tmp_path / "absent.mp4").as_uri(), "--ladder", str(ladder),
                             "--json").stdout)["task_id"]
    worker = run("worker", "--max-tasks", "3")
    assert worker.returncode == 0, worker.stdout + worker.stderr
    for task_id in ids:
        st = json.loads(run("status", task_id, "--json").stdout)
        assert st["status"] == "succeeded" and [e["kind"] for e in st["events"]] == HAPPY
        out = Path(st["renditions"][0]["uri"][7:])
        assert out.is_file() and out.parent.name == task_id
    st = json.loads(run("status", missing, "--json").stdout)
    assert st["status"] == "escalated" and "does not exist" in st["last_error"]
    listed = json.loads(run("tasks", "list", "--json").stdout)
    assert {t["id"] for t in listed} == {*ids, missing}


@pytest.mark.timeout(120)
def test_truncated_source_succeeds_with_its_warnings_on_the_task(tmp_path, media_dir):
    """An upload cut short still yields renditions, and the task says so (the engine's warnings
    and which audio stream was used are in the `transcoded` event)."""
    env = embedded_env(tmp_path, FRAMEPRESS_METRICS_PORT="0")
    ladder = tmp_path / "tiny.json"
    ladder.write_text(json.dumps(TINY_LADDER))
    whole = tmp_path / "whole.mp4"  # the index first, so a cut file still opens
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(media_dir / "clip144.mp4"),
                    "-c", "copy", "-movflags", "+faststart", str(whole)], check=True)
    cut = tmp_path / "cut.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])
    run = lambda *a: run_framepress(env, *a, check=False, timeout=100)
    task_id = json.loads(run("submit", cut.as_uri(), "--ladder", str(ladder), "--json").stdout)["task_id"]
    worker = run("worker", "--max-tasks", "1")
    assert worker.returncode == 0, worker.stdout + worker.stderr
    st = json.loads(run("status", task_id, "--json").stdout)
    assert st["status"] == "succeeded", st["last_error"]
    transcoded = next(e for e in st["events"] if e["kind"] == "transcoded")["data"]
    assert len(transcoded["warnings"]) == 1 and "truncated" in transcoded["warnings"][0]
    assert transcoded["audio"]["codec"] == "aac" and transcoded["audio"]["index"] == 1
    assert 0 < st["renditions"][0]["frames"] < 30
    assert "truncated" in worker.stdout + worker.stderr  # logged as well


@pytest.mark.timeout(120)
def test_quality_asked_at_submit_is_on_the_rendition_rows_and_in_status(tmp_path, media_dir):
    env = embedded_env(tmp_path, FRAMEPRESS_METRICS_PORT="0")
    ladder = tmp_path / "tiny.json"
    ladder.write_text(json.dumps(TINY_LADDER))
    source = (media_dir / "clip144.mp4").as_uri()
    run = lambda *a: run_framepress(env, *a, check=False, timeout=100)
    measured = json.loads(run("submit", source, "--ladder", str(ladder), "--quality", "--json").stdout)["task_id"]
    plain = json.loads(run("submit", source, "--ladder", str(ladder), "--json").stdout)["task_id"]
    worker = run("worker", "--max-tasks", "2")
    assert worker.returncode == 0, worker.stdout + worker.stderr
    st = json.loads(run("status", measured, "--json").stdout)
    assert st["status"] == "succeeded" and st["renditions"]
    for r in st["renditions"]:
        assert 20 < r["psnr"] < 70 and 0.5 < r["ssim"] <= 1
    shown = run("status", measured).stdout
    assert "PSNR" in shown and f"{st['renditions'][0]['psnr']:.2f} dB" in shown
    st = json.loads(run("status", plain, "--json").stdout)
    assert [(r["psnr"], r["ssim"]) for r in st["renditions"]] == [(None, None)] * len(st["renditions"])
    assert "PSNR" not in run("status", plain).stdout
