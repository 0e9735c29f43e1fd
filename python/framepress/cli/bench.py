"""`framepress bench`: the benchmark suite (see framepress.bench)."""
from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Optional

import click

from framepress.cli import cli

MODE_CHOICES = ("engine", "pipeline", "scale", "gpu", "pertitle", "split", "all")


def _summary_table(results: dict, modes: tuple[str, ...]) -> None:
    from rich.console import Console
    from rich.table import Table
    console = Console()
    eng = results.get("engine") if "engine" in modes else None
    if eng:
        t = Table(title="engine and peers (median over rounds)")
        for col in ("system", "wall s", "CPU s", "peak MB", "fps", "PSNR (lowest rung)"):
            t.add_column(col, justify="left" if col == "system" else "right")
        for name, s in eng["systems"].items():
            if not s.get("rounds"):
                t.add_row(name, "–", "–", "–", "–", s.get("error", "")[:60])
                continue
            sm = s["summary"]
            psnr = f"{s['rungs'][-1]['psnr']:.2f}" if s.get("rungs") else "–"
            t.add_row(name, f"{sm['wall_s']['median']:.2f}", f"{sm['cpu_s']['median']:.2f}",
                      f"{sm['peak_rss_mb']['median']:.0f}", f"{sm['fps']['median']:.1f}", psnr)
        console.print(t)
    for mode in modes:
        if mode != "engine" and results.get(mode, {}).get("skipped"):
            console.print(f"{mode}: skipped ({results[mode]['skipped']})")


def _command_line(mode: str, ladder: str, rounds: Optional[int], quick: bool,
                  seconds: Optional[float], systems: Optional[str], source: Optional[Path]) -> str:
    """How this run was asked for, for the report (the source by name only: no local paths)."""
    parts = ["framepress bench", mode]
    parts += ["--quick"] if quick else []
    parts += [f"--rounds {rounds}"] if rounds else []
    parts += [f"--seconds {seconds:g}"] if seconds else []
    parts += [f"--ladder {shlex.quote(Path(ladder).name)}"] if ladder != "default" else []
    parts += [f"--systems {systems}"] if systems else []
    parts += [f"--source {shlex.quote(source.name)}"] if source else []
    return " ".join(parts)


def _run_section(run, opts, name: str, write_section, out: Path, command: str, as_json: bool) -> tuple[dict, Path]:
    """Run a mode that writes its own section of RESULTS.md; its figures kept as work/NAME.json
    and, with --json, printed."""
    say = (lambda line: None) if as_json else (lambda line: click.echo(line, err=True))
    results = run(opts, say=say)
    (opts.work_dir / f"{name}.json").write_text(json.dumps(results, indent=1))
    report = write_section(results, out, command)
    if as_json:
        click.echo(json.dumps(results, indent=1))
    return results, report


def _pertitle(out: Path, source: Optional[Path], full: bool, as_json: bool) -> None:
    from framepress.bench.pertitle_mode import PerTitleOptions, run_pertitle_bench
    from framepress.bench.pertitle_report import write_section
    command = "framepress bench pertitle" + (" --full" if full else "") + \
        (f" --source {shlex.quote(source.name)}" if source else "")
    opts = PerTitleOptions(work_dir=out / "work", full=full, extra_sources=[source] if source else [])
    results, report = _run_section(run_pertitle_bench, opts, "pertitle", write_section, out, command, as_json)
    if as_json:
        return
    for s in results["sources"]:
        click.echo(f"{s['name']:16} {s['kind']:5} BD-rate {s['bd_rate_pct']} %  BD-PSNR {s['bd_psnr_db']} dB  "
                   f"bits {s['bits']['fixed']} -> {s['bits']['per_title']}  "
                   f"analysis {s['analysis']['share_wall']:.1%} of the transcode")
    click.echo(f"report: {report}")


def _split(out: Path, source: Optional[Path], ladder: str, rounds: Optional[int], quick: bool,
           seconds: Optional[float], chunk_seconds: Optional[float], as_json: bool) -> None:
    from framepress.bench.split_mode import SplitBenchOptions, run_split_bench
    from framepress.bench.split_report import write_section
    command = _command_line("split", ladder, rounds, quick, seconds, None, source) + \
        (f" --chunk-seconds {chunk_seconds:g}" if chunk_seconds else "")
    opts = SplitBenchOptions(work_dir=out / "work", source=source, quick=quick, seconds=seconds,
                             chunk_seconds=chunk_seconds, ladder=ladder, rounds=rounds or (1 if quick else 3))
    results, report = _run_section(run_split_bench, opts, "split", write_section, out, command, as_json)
    if as_json:
        return
    if results.get("skipped"):
        click.echo(f"split: skipped ({results['skipped']})")
    else:
        sm = results["summary"]
        click.echo(f"whole {sm['whole_wall_s']['median']:.1f} s, split {sm['split_wall_s']['median']:.1f} s: "
                   f"ratio {sm['ratio']['median']:.3f} (goal <= {sm['goal_ratio']}: "
                   f"{'met' if sm['goal_met'] else 'not met'})")
        click.echo(f"report: {report}")


@cli.command()
@click.argument("mode", type=click.Choice(MODE_CHOICES), default="engine")
@click.option("--source", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Your own source file (default: DESIGN §5's generated 1080p30 clip).")
@click.option("--ladder", default="default", show_default=True, help="Built-in ladder name or JSON file.")
@click.option("--rounds", type=click.IntRange(1, 100), default=None,
              help="Alternating rounds of every system (default 3; 1 with --quick).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("bench"),
              show_default=True, help="Where RESULTS.md, the plots and work files go.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--quick", is_flag=True, help="A tiny clip and one round: a smoke test in seconds.")
@click.option("--seconds", type=click.FloatRange(0.5, 600), default=None,
              help="Length of the generated clip.")
@click.option("--systems", default=None,
              help="Comma-separated subset of engine,engine-outputs,engine-quality,ffmpeg,ffmpeg-new,pyav,ffmpeg-x4.")
@click.option("--no-quality", is_flag=True, help="Skip PSNR/SSIM.")
@click.option("--full", is_flag=True,
              help="pertitle: 1080p30 20 s sources, sampled by the analysis (default: 720p30 4 s, analysed whole; a few minutes on 2 cores).")
@click.option("--chunk-seconds", type=click.FloatRange(1, 600), default=None,
              help="split: chunk length asked for (default 30; 8 with --quick), rounded to whole segments.")
def bench(mode: str, source: Optional[Path], ladder: str, rounds: Optional[int], out: Path,
          as_json: bool, quick: bool, seconds: Optional[float], systems: Optional[str],
          no_quality: bool, full: bool, chunk_seconds: Optional[float]) -> None:
    """Benchmark the engine against FFmpeg and PyAV, the pipeline's overhead, throughput against
    workers, the GPU paths, per-title ladders against the fixed one (`pertitle`), and one long
    source split over two one-core workers against one worker (`split`: 120 s of 1080p, minutes;
    neither is part of `all`); writes OUT/RESULTS.md with PNG plots."""
    if mode == "pertitle":
        _pertitle(out, source, full, as_json)
        return
    from framepress.ladder import load_ladder
    from framepress.bench.progress import progress_for_terminal
    from framepress.bench.runner import MODES, BenchOptions, run_bench

    load_ladder(ladder)                       # a bad ladder fails here, before any work
    if mode == "split":
        _split(out, source, ladder, rounds, quick, seconds, chunk_seconds, as_json)
        return
    modes = MODES if mode == "all" else (mode,)
    opts = BenchOptions(modes=modes, out=out, source=source, ladder=ladder,
                        rounds=rounds or (1 if quick else 3), quick=quick, seconds=seconds,
                        systems=systems.split(",") if systems else None,
                        measure_quality=not no_quality,
                        command=_command_line(mode, ladder, rounds, quick, seconds, systems, source))
    try:
        with progress_for_terminal(not as_json) as progress:
            results = run_bench(opts, progress)
    except ValueError as exc:                 # e.g. unknown system names, a non-h264 ladder
        raise click.UsageError(str(exc)) from None
    if as_json:
        click.echo(json.dumps({m: results[m] for m in modes}, indent=1))
    else:
        _summary_table(results, modes)
        click.echo(f"report: {out / 'RESULTS.md'}")
