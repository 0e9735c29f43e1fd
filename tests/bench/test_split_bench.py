"""`framepress bench split`: the projection's arithmetic, the timeline read from events, the
report section, and the mode end to end on a tiny source with real workers and services."""
from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone

import pytest

from framepress.bench.report import write_report
from framepress.bench.split_figures import SPLIT_PHASES, per_chunk_costs, split_figures, whole_figures
from framepress.bench.split_projection import Measured, chunk_count, projection, split_wall
from framepress.bench.split_report import HEADING, PLOT, write_section
from framepress.cli import main

from support.services import AMQP_URL, PG_ADMIN_URL, TINY_LADDER, make_test_clip

PNG = b"\x89PNG\r\n\x1a\n"
# Medians of a 120 s 1080p run split into four 32 s chunks on two one-core workers.
MEASURED = Measured(source_s=120.0, chunk_s=32.0, whole_wall_s=240.0, pickup_s=0.05,
                    pull_and_split_s=4.0, engine_per_source_s=1.8, fixed_per_chunk_s=1.5,
                    requeue_s=0.5, stitch_and_upload_s=6.0, commit_s=0.05)


def test_the_model_at_the_measured_point_adds_its_terms():
    r = split_wall(MEASURED, 120.0, 2)
    assert (r["chunks"], r["rounds"]) == (4, 2)
    # 0.05 + 4 before; two rounds of 1.8 × 32 + 1.5; 0.5 + 6 + 0.05 after
    assert r["terms"] == pytest.approx({"serial before": 4.05, "chunks": 118.2, "serial after": 6.55})
    assert r["wall_s"] == pytest.approx(128.8)


def test_a_two_hour_source_scales_the_serial_steps_and_counts_rounds():
    p = projection(MEASURED, 7200.0, (1, 10, 50, 200))
    assert p["whole_wall_s"] == pytest.approx(240.0 * 60)
    assert chunk_count(7200.0, 32.0) == 225
    assert [(r["workers"], r["rounds"]) for r in p["rows"]] == [(1, 225), (10, 23), (50, 5), (200, 2)]
    for r in p["rows"]:
        assert r["terms"]["serial before"] == pytest.approx(0.05 + 4.0 * 60)
        assert r["terms"]["serial after"] == pytest.approx(0.5 + 6.0 * 60 + 0.05)
        assert r["terms"]["chunks"] == pytest.approx(r["rounds"] * (1.8 * 32 + 1.5))
        assert r["speedup"] == pytest.approx(p["whole_wall_s"] / r["wall_s"])
    walls = [r["wall_s"] for r in p["rows"]]
    assert walls == sorted(walls, reverse=True)
    # One worker pays the fixed costs of 225 chunks and the split and stitch on top of the work.
    assert p["rows"][0]["wall_s"] > p["whole_wall_s"] * 0.9
    floor = p["floor"]
    assert floor["rounds"] == 1 and floor["wall_s"] < walls[-1]


def _iso(t: float) -> str:
    return (datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=t)).isoformat()


def _task(tid: str, created: float, events: list[tuple], rng=None) -> dict:
    return {"id": tid, "created_at": _iso(created), "range": rng,
            "events": [{"kind": k, "at": _iso(t), "worker_id": w, "data": d} for k, t, w, d in events]}


def _chunk(i: int, worker: str, pid: int, taken: float, engine: float) -> dict:
    wall = engine + 0.4
    return _task(f"c{i}", 5.0, [("taken", taken, worker, {"pid": pid}),
                                ("succeeded", taken + wall, worker,
                                 {"engine_seconds": engine, "wall_seconds": wall})],
                 [8 * i, 8 * (i + 1) if i < 3 else None])


def split_run() -> dict:
    """A parent taken by worker a at 0.1 s, split at 5 s into four chunks: b takes chunks 0 and 2,
    a chunks 1 and 3; the last chunk succeeds at 17.4 s, the parent is stitched by b."""
    chunks = [_chunk(0, "b", 11, 5.1, 5.0), _chunk(1, "a", 10, 5.3, 5.0),
              _chunk(2, "b", 11, 11.0, 5.0), _chunk(3, "a", 10, 11.0, 6.0)]
    plan = [{"start": c["range"][0], "end": c["range"][1]} for c in chunks]
    parent = _task("p", 0.0, [("taken", 0.1, "a", {}), ("pulled", 0.5, "a", {"seconds": 0.3}),
                              ("split", 5.0, "a", {"seconds": 4.2, "duration": 32.0, "chunk_seconds": 8.0,
                                                   "chunks": plan}),
                              ("requeued", 17.4, None, {}), ("taken", 17.9, "b", {}),
                              ("stitched", 19.9, "b", {"seconds": 1.9}), ("uploaded", 20.4, "b", {}),
                              ("succeeded", 20.5, "b", {})])
    epoch = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()
    return {"submitted_at": epoch - 0.05, "parent": parent, "chunks": chunks, "cores_by_pid": {10: 0, 11: 1},
            "worker_cpu_s": [9.0, 10.0],
            "published_at": {"p": epoch + 21.0}}


def test_the_split_timeline_adds_up_and_finds_each_chunks_gap():
    f = split_figures(split_run())
    assert f["wall_s"] == pytest.approx(20.55)
    assert list(f["phases"]) == list(SPLIT_PHASES)
    assert sum(f["phases"].values()) == pytest.approx(f["wall_s"])
    assert f["phases"]["chunks"] == pytest.approx(12.4) and f["phases"]["requeue and pickup"] == pytest.approx(0.5)
    assert (f["pull_s"], f["split_s"], f["stitch_s"], f["chunk_length_s"]) == (0.3, 4.2, 1.9, 8)
    rows = {r["id"]: r for r in f["chunks"]}
    assert [rows[c]["core"] for c in ("c0", "c1", "c2", "c3")] == [1, 0, 1, 0]
    # First chunks on a worker: from creation; later ones: from the worker's previous success.
    assert rows["c0"]["gap_s"] == pytest.approx(0.1) and rows["c1"]["gap_s"] == pytest.approx(0.3)
    assert rows["c2"]["gap_s"] == pytest.approx(11.0 - 10.5) and rows["c3"]["gap_s"] == pytest.approx(11.0 - 10.7)
    assert [rows[c]["after_previous"] for c in ("c0", "c1", "c2", "c3")] == [False, False, True, True]
    assert rows["c2"]["queue_wait_s"] == pytest.approx(6.0)
    assert f["publish_s"] == pytest.approx(0.5)
    assert f["cpu_s"] == 19.0 and f["core_share"] == pytest.approx(19.0 / (2 * 20.55))
    costs = per_chunk_costs([f])
    assert costs["overhead_s"] == pytest.approx(0.4)
    assert costs["gap_s"] == pytest.approx(0.4)     # 0.5 and 0.3: the chunks after another one
    assert costs["engine_per_source_s"] == pytest.approx(21.0 / 32.0)


def test_a_task_that_was_not_split_has_no_split_timeline():
    run = split_run()
    whole = {**run, "chunks": [], "worker_cpu_s": [9.5], "parent": _task("w", 0.0, [
        ("taken", 0.1, "a", {}), ("pulled", 0.4, "a", {}), ("transcoded", 9.4, "a", {}),
        ("uploaded", 9.9, "a", {}), ("succeeded", 10.0, "a", {"engine_seconds": 8.9})])}
    f = whole_figures(whole)
    assert f["phases"] == pytest.approx({"pickup": 0.15, "pull": 0.3, "engine": 9.0, "upload": 0.5, "commit": 0.1})
    assert f["engine_s"] == 8.9 and f["publish_s"] is None and f["core_share"] == pytest.approx(9.5 / 10.05)
    with pytest.raises(ValueError, match="not split"):
        split_figures(whole)
    without = {**run, "parent": {**run["parent"], "events": run["parent"]["events"][:2]}}
    with pytest.raises(ValueError, match="no 'split' event"):
        split_figures(without)


def test_the_section_replaces_an_older_one_and_other_modes_keep_it(tmp_path):
    from framepress.bench.split_mode import summarise
    run = split_run()
    whole = whole_figures({**run, "chunks": [], "parent": _task("w", 0.0, [
        ("taken", 0.1, "a", {}), ("pulled", 0.4, "a", {}), ("transcoded", 30.4, "a", {}),
        ("uploaded", 30.9, "a", {}), ("succeeded", 31.0, "a", {"engine_seconds": 30.0})])})
    split = split_figures(run)
    busy = [{**whole, "wall_s": 33.0}, {**whole, "wall_s": 35.0}]
    rounds = [{"whole": whole, "split": split, "ratio": split["wall_s"] / whole["wall_s"], "load_before": [0.5, 0.7, 0.6],
               "busy_whole": busy, "busy_ratio": split["wall_s"] / 34.0}]
    res = {"mode": "split", "finished_at": "now", "machine": {"cores": 2},
           "source": {"path": "src.mp4", "width": 1280, "height": 720, "codec": "h264", "fps": 30.0,
                      "seconds": 32.0, "has_audio": True},
           "settings": {"ladder": "default", "chunk_seconds": 8.0, "cores": [0, 1], "rounds": 1, "poll_s": 0.1},
           "rounds": rounds, "summary": summarise(rounds)}
    assert res["summary"]["ratio"]["median"] == pytest.approx(20.55 / 31.05)
    assert res["summary"]["goal_met"] is False
    (tmp_path / "RESULTS.md").write_text(f"# results\n\n## Engine (then)\n\nkept\n\n{HEADING} (old)\n\nstale\n\n"
                                         "## Per-title ladders (then)\n\nkept too\n")
    text = write_section(res, tmp_path, "framepress bench split --quick").read_text()
    assert "stale" not in text and text.count(HEADING) == 1 and "kept too" in text
    assert text.index("## Engine") < text.index(HEADING) < text.index("## Per-title")
    assert "| 2 one-core workers ≤ 0.55 × one one-core worker, unsplit | 0.662 | **no** |" in text
    assert "| the same, the one worker's neighbour core as busy as in the split run (see below) | 0.604 | **no** |" in text
    assert "| whole, every core busy (each of the 2 tasks) | 1 | 34.00 (33.00–35.00) |" in text
    assert "| split | 2 | 20.55 | 19.0 | 0.46 |" in text      # 19 CPU s of 2 × 20.55 s
    assert "| 200 | 5 of 900 |" in text      # 7200 s in 8 s chunks
    assert (tmp_path / PLOT).read_bytes().startswith(PNG)
    # A later run of another mode rewrites its own sections and keeps this one and per-title.
    write_report({"gpu": {"mode": "gpu", "finished_at": "later", "skipped": "no GPU"}}, tmp_path)
    text = (tmp_path / "RESULTS.md").read_text()
    assert "## GPU (later)" in text and text.count(HEADING) == 1 and "kept too" in text and "kept\n" in text


def test_without_the_cores_to_pin_workers_to_the_mode_says_so(tmp_path, monkeypatch):
    from framepress.bench.split_mode import SplitBenchOptions, run_split_bench
    res = run_split_bench(SplitBenchOptions(work_dir=tmp_path, cores=(0, 4095)))
    assert "no core 4095" in res["skipped"]
    assert "Skipped: no core 4095" in write_section(res, tmp_path, "framepress bench split").read_text()
    monkeypatch.setenv("PATH", str(tmp_path))      # no taskset to be found
    assert "taskset (util-linux) is not installed" in run_split_bench(SplitBenchOptions(work_dir=tmp_path))["skipped"]


def test_a_worker_that_cannot_start_is_reported_with_its_output(tmp_path):
    from framepress.bench.service_run import embedded_env, started_workers
    from framepress.config import Settings
    from framepress.service.db import connect
    env = embedded_env(tmp_path / "stack")
    db = connect(Settings.from_env(env))
    with pytest.raises(RuntimeError, match="a worker exited at start: .*taskset"):
        with started_workers(env, db, 1, cores=[4095], log_dir=tmp_path):
            pass
    db.dispose()


@pytest.fixture
def services_env(monkeypatch):
    monkeypatch.setenv("FRAMEPRESS_BENCH_PG", PG_ADMIN_URL)
    monkeypatch.setenv("FRAMEPRESS_BENCH_AMQP", AMQP_URL)


@pytest.mark.timeout(120)
def test_a_task_that_fails_or_outlasts_its_deadline_stops_the_run(tmp_path, services_env):
    from framepress.bench.real_services import service_stack
    from framepress.bench.split_mode import timed_run
    with service_stack(hwaccel="cpu", log_level="WARNING") as stack:
        with pytest.raises(RuntimeError, match="escalated"):
            timed_run(stack, f"s3://{stack.bucket}/no-such-source.mp4", cores=(0,), split_seconds=0,
                      chunk_seconds=2, ladder=TINY_LADDER, log_dir=tmp_path / "missing")
        stack.s3.upload_file(str(make_test_clip(tmp_path / "tiny.mp4", 2, "256x144")), stack.bucket, "tiny.mp4")
        with pytest.raises(TimeoutError, match="at its deadline"):
            timed_run(stack, f"s3://{stack.bucket}/tiny.mp4", cores=(0,), split_seconds=0, chunk_seconds=2,
                      ladder=TINY_LADDER, timeout_s=0, log_dir=tmp_path / "late")


@pytest.mark.timeout(180)
def test_the_mode_end_to_end_on_a_tiny_source(tmp_path, services_env, capsys):
    src = make_test_clip(tmp_path / "tiny.mp4", 8, "256x144")
    ladder = tmp_path / "tiny.json"
    ladder.write_text(json.dumps(TINY_LADDER))
    out = tmp_path / "bench"
    assert main(["bench", "split", "--quick", "--source", str(src), "--ladder", str(ladder),
                 "--chunk-seconds", "2", "--out", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    (r,) = res["rounds"]
    whole, split = r["whole"], r["split"]
    assert sum(whole["phases"].values()) == pytest.approx(whole["wall_s"])
    assert sum(split["phases"].values()) == pytest.approx(split["wall_s"])
    assert all(v >= 0 for v in [*whole["phases"].values(), *split["phases"].values()])
    assert [c["range"] for c in split["chunks"]] == [[0, 2], [2, 4], [4, 6], [6, None]]
    assert {c["core"] for c in split["chunks"]} <= {0, 1}
    assert all(c["engine_s"] > 0 and c["overhead_s"] > 0 and c["gap_s"] >= 0 for c in split["chunks"])
    assert split["source_s"] == pytest.approx(8, abs=0.1) and split["chunk_length_s"] == 2
    assert r["ratio"] == pytest.approx(split["wall_s"] / whole["wall_s"])
    # The source whole on both workers at once: a task each, each with its own worker's CPU.
    busy = r["busy_whole"]
    assert len(busy) == 2 and all(b["engine_s"] > 0 and b["cpu_s"] > 0 for b in busy), busy
    assert r["busy_ratio"] == pytest.approx(split["wall_s"] / ((busy[0]["wall_s"] + busy[1]["wall_s"]) / 2))
    assert whole["cpu_s"] > 0 and split["cpu_s"] > 0 and whole["core_share"] > 0 and split["core_share"] > 0
    p = res["summary"]["projection"]
    assert [x["rounds"] for x in p["rows"]] == [math.ceil(3600 / w) for w in (1, 10, 50, 200)]
    text = (out / "RESULTS.md").read_text()
    assert f"{HEADING} (" in text and "framepress bench split --quick --ladder tiny.json --source tiny.mp4 --chunk-seconds 2" in text
    assert (out / PLOT).read_bytes().startswith(PNG)
