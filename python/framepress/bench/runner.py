"""Runs the chosen modes, keeps every mode's latest result, and writes the report.

Results accumulate in `<out>/work/results.json`, so `framepress bench scale` after
`framepress bench engine` gives a report with both; each section carries its own date.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from framepress.bench.engine_mode import EngineBenchOptions, run_engine_bench
from framepress.bench.progress import Progress
from framepress.bench.report import write_report

MODES = ("engine", "pipeline", "scale", "gpu")


@dataclass
class BenchOptions:
    modes: tuple[str, ...] = ("engine",)
    out: Path = Path("bench")
    source: Optional[Path] = None
    ladder: str = "default"
    rounds: int = 3
    quick: bool = False
    seconds: Optional[float] = None
    systems: Optional[list[str]] = None
    measure_quality: bool = True
    command: str = ""                    # how the bench was invoked, for the report
    keep_previous: bool = True           # merge with earlier results of other modes
    extra: dict = field(default_factory=dict)

    @property
    def work_dir(self) -> Path:
        return self.out / "work"


def _engine(opts: BenchOptions, progress: Progress) -> dict:
    return run_engine_bench(EngineBenchOptions(
        work_dir=opts.work_dir, source=opts.source, quick=opts.quick, seconds=opts.seconds,
        ladder=opts.ladder, rounds=opts.rounds, systems=opts.systems,
        measure_quality=opts.measure_quality), progress)


def _pipeline(opts: BenchOptions, progress: Progress) -> dict:
    from framepress.bench.pipeline_mode import run_pipeline_bench
    return run_pipeline_bench(opts, progress)


def _scale(opts: BenchOptions, progress: Progress) -> dict:
    from framepress.bench.scale_mode import run_scale_bench
    return run_scale_bench(opts, progress)


def _gpu(opts: BenchOptions, progress: Progress) -> dict:
    from framepress.bench.gpu_mode import run_gpu_bench
    return run_gpu_bench(opts, progress)


RUNNERS = {"engine": _engine, "pipeline": _pipeline, "scale": _scale, "gpu": _gpu}


def results_path(out: Path) -> Path:
    return out / "work" / "results.json"


def load_results(out: Path) -> dict:
    try:
        return json.loads(results_path(out).read_text())
    except (OSError, ValueError):
        return {}


def run_bench(opts: BenchOptions, progress: Progress = Progress()) -> dict:
    opts.work_dir.mkdir(parents=True, exist_ok=True)
    results = load_results(opts.out) if opts.keep_previous else {}
    for mode in opts.modes:
        results[mode] = RUNNERS[mode](opts, progress)
        results_path(opts.out).write_text(json.dumps(results, indent=1))   # keep what is done
    write_report(results, opts.out, opts.command)
    return results
