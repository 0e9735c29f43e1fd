#!/usr/bin/env python3
"""The reference benchmark (DESIGN §5): the engine against the FFmpeg CLIs and PyAV.

    python bench/ladder.py                      # full: 10 s 1080p30 clip, 3 alternating rounds
    python bench/ladder.py --rounds 1 --seconds 3 --systems engine,ffmpeg-new   # a quick look

Writes bench/RESULTS.md and the plots next to it. The same code serves `framepress bench engine`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from framepress.bench.progress import progress_for_terminal
from framepress.bench.runner import BenchOptions, run_bench

BENCH_DIR = Path(__file__).resolve().parent


def _command_line(args: argparse.Namespace) -> str:
    """The flags that shape the figures (paths by file name only: no machine paths in reports)."""
    parts = ["python bench/ladder.py", f"--rounds {args.rounds}"]
    parts += [f"--seconds {args.seconds:g}"] if args.seconds else []
    parts += ["--quick"] if args.quick else []
    parts += [f"--source {args.source.name}"] if args.source else []
    parts += [f"--ladder {Path(args.ladder).name}"] if args.ladder != "default" else []
    parts += [f"--systems {args.systems}"] if args.systems else []
    parts += ["--no-quality"] if args.no_quality else []
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    p.add_argument("--seconds", type=float, default=None, help="length of the generated 1080p clip")
    p.add_argument("--quick", action="store_true", help="a 1 s 720p clip instead (a smoke test)")
    p.add_argument("--source", type=Path, default=None, help="your own source instead")
    p.add_argument("--ladder", default="default", help="ladder name or JSON file (default: default)")
    p.add_argument("--systems", default=None,
                   help="comma-separated subset of engine,ffmpeg,ffmpeg-new,pyav,ffmpeg-x4")
    p.add_argument("--no-quality", action="store_true", help="skip PSNR/SSIM (faster)")
    p.add_argument("--out", type=Path, default=BENCH_DIR, help="report directory (default: bench/)")
    args = p.parse_args(argv)
    opts = BenchOptions(modes=("engine",), out=args.out, source=args.source, ladder=args.ladder,
                        rounds=args.rounds, quick=args.quick, seconds=args.seconds,
                        systems=args.systems.split(",") if args.systems else None,
                        measure_quality=not args.no_quality,
                        command=_command_line(args))
    with progress_for_terminal() as progress:
        run_bench(opts, progress)
    print((opts.out / "RESULTS.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
