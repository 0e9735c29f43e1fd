#!/usr/bin/env python3
"""Pipeline overhead per task: task wall time minus engine time (issue 3, "Measure").

    python bench/pipeline.py                     # 1 s 360p clip x7, reference clip x3
    python bench/pipeline.py --small-runs 3 --reference-runs 0

Runs on the real services on loopback: RabbitMQ (FRAMEPRESS_BENCH_AMQP, default guest@127.0.0.1),
Postgres (FRAMEPRESS_BENCH_PG, default postgres@127.0.0.1/test; a scratch database is made and
dropped), and S3 at AWS_ENDPOINT_URL, or a moto server started here when that is unset. One
`framepress worker` process takes tasks submitted one at a time (so it is idle each time).

Per task, from the task's own events:
- engine: the time inside `framepress.transcode` (the `succeeded` event's `engine_seconds`);
- task wall: from the worker receiving the message to its outcome being written (`wall_seconds`);
- overhead = task wall - engine: parse, lease, events, pull, upload, rendition rows;
- end to end: `submit()` called → `succeeded` visible to the client (adds the publish, the
  broker hop and the success commit; polled every 10 ms).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Optional

from framepress.bench import real_services
from framepress.bench.real_services import delete_queues, s3_endpoint, scratch_database, settings_env

BENCH_DIR = Path(__file__).resolve().parent
WORK = BENCH_DIR / "work" / "sources"
STAGES = ("queue wait", "database", "pull", "engine", "upload")
TARGETS = {"small": ("ms", 150.0), "reference": ("%", 3.0)}


# ---- services ---------------------------------------------------------------------------------

@contextmanager
def worker_process(settings, log_path: Path) -> Iterator[subprocess.Popen]:
    env = {**os.environ, **settings_env(settings)}
    exe = Path(sys.executable).with_name("framepress")
    with open(log_path, "w") as log:
        proc = subprocess.Popen([str(exe), "worker"], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            proc.wait(timeout=60)


# ---- media ------------------------------------------------------------------------------------

def clips() -> dict[str, Path]:
    """DESIGN §5's reference clip and a 1 s 360p one made the same way (cached in bench/work)."""
    from framepress.bench.source import REFERENCE, SourceSpec, make_source
    ffmpeg = shutil.which("ffmpeg") or "ffmpeg"
    return {"small": make_source(ffmpeg, SourceSpec(width=640, height=360, fps=30, seconds=1.0), WORK),
            "reference": make_source(ffmpeg, REFERENCE, WORK)}


# ---- measuring --------------------------------------------------------------------------------

def _t(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def task_figures(status: dict[str, Any], e2e: float) -> dict[str, float]:
    ev = {e["kind"]: e for e in status["events"]}
    done = ev["succeeded"]["data"]
    at = {k: _t(e["at"]) for k, e in ev.items()}
    return {"engine_s": done["engine_seconds"], "wall_s": done["wall_seconds"],
            "overhead_s": done["overhead_seconds"], "e2e_s": e2e,
            "e2e_overhead_s": e2e - done["engine_seconds"],
            "split": {"queue wait": at["taken"] - _t(status["created_at"]),
                      "database": (at["details_loaded"] - at["taken"]) + (at["succeeded"] - at["uploaded"]),
                      "pull": at["pulled"] - at["details_loaded"],
                      "engine": done["engine_seconds"],
                      "upload": at["uploaded"] - at["transcoded"]}}


def run_one(client, source_uri: str, ladder: str, timeout: float = 600) -> dict[str, float]:
    t0 = time.monotonic()
    task_id = client.submit(source_uri, ladder=ladder)
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        st = client.status(task_id)
        if st and st["status"] == "succeeded":
            return task_figures(st, time.monotonic() - t0)
        if st and st["status"] in ("escalated", "failed", "cancelled"):
            raise RuntimeError(f"task {task_id} {st['status']}: {st['last_error']}")
        time.sleep(0.01)
    raise TimeoutError(f"task {task_id} did not finish in {timeout} s")


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    med = lambda key: statistics.median(r[key] for r in runs)
    out = {k: med(k) for k in ("engine_s", "wall_s", "overhead_s", "e2e_s", "e2e_overhead_s")}
    out["overhead_pct"] = 100 * out["overhead_s"] / out["wall_s"]
    out["e2e_overhead_pct"] = 100 * out["e2e_overhead_s"] / out["e2e_s"]
    out["overhead_max_s"] = max(r["overhead_s"] for r in runs)
    out["split_s"] = {k: statistics.median(r["split"][k] for r in runs) for k in STAGES}
    out["runs"] = len(runs)
    return out


def measure_overhead(small_runs: int = 7, reference_runs: int = 3, *, ladder: str = "default",
                     pg_admin_url: Optional[str] = None, amqp_url: Optional[str] = None,
                     warmup: int = 1) -> dict[str, Any]:
    """Median per-task figures for each clip on RabbitMQ + Postgres + S3; see the module doc."""
    sources = clips()
    results: dict[str, Any] = {}
    with real_services.service_stack(pg_admin_url, amqp_url) as stack, \
            worker_process(stack.settings, stack.scratch / "worker.log"):
        client, uris = stack.client, {}
        for name, path in sources.items():
            stack.s3.upload_file(str(path), stack.bucket, f"sources/{path.name}")
            uris[name] = f"s3://{stack.bucket}/sources/{path.name}"
        plan = [("small", small_runs), ("reference", reference_runs)]
        for _ in range(warmup):  # the first task pays for imports and connections
            run_one(client, uris["small"], ladder)
        for name, runs in plan:
            if runs:
                results[name] = summarize([run_one(client, uris[name], ladder) for _ in range(runs)])
    first = results.get("small") or next(iter(results.values()))
    return {"clips": results, "split_s": first["split_s"], "tasks": sum(r["runs"] for r in results.values()),
            "stack": "RabbitMQ + Postgres + S3 (moto over HTTP) on loopback",
            "description": (f"One `framepress worker` on RabbitMQ, Postgres and S3 (moto) on loopback; "
                            f"tasks submitted one at a time to an idle worker, ladder `{ladder}` with "
                            f"HLS; the split is for the 1 s 360p clip (medians)."),
            "markdown": markdown(results)}


def markdown(results: dict[str, Any]) -> str:
    names = {"small": "1 s 360p30", "reference": "10 s 1080p30 (DESIGN §5)"}
    lines = ["| clip | tasks | engine s | task wall s | overhead ms | overhead % | target | "
             "end-to-end s | end-to-end overhead ms |",
             "|---|---:|---:|---:|---:|---:|---|---:|---:|"]
    for key, r in results.items():
        unit, limit = TARGETS[key]
        target = f"≤ {limit:g} {unit}"
        lines.append(f"| {names[key]} | {r['runs']} | {r['engine_s']:.3f} | {r['wall_s']:.3f} | "
                     f"{1000 * r['overhead_s']:.0f} | {r['overhead_pct']:.1f} | {target} | "
                     f"{r['e2e_s']:.3f} | {1000 * r['e2e_overhead_s']:.0f} |")
    lines.append("")
    lines.append("| clip | " + " | ".join(f"{s} ms" for s in STAGES) + " |")
    lines.append("|---|" + "---:|" * len(STAGES))
    for key, r in results.items():
        lines.append(f"| {names[key]} | " + " | ".join(f"{1000 * r['split_s'][s]:.0f}" for s in STAGES) + " |")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small-runs", type=int, default=7)
    p.add_argument("--reference-runs", type=int, default=3)
    p.add_argument("--ladder", default="default")
    args = p.parse_args(argv)
    res = measure_overhead(args.small_runs, args.reference_runs, ladder=args.ladder)
    print(res["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
