"""`framepress bench pertitle`: per-title ladders against the fixed `default` ladder.

For each source: the fixed ladder's transcode; the per-title analysis (`choose_ladder`) and the
transcode of the ladder it chose, each timed (wall, and CPU of this process: the engine runs in
it); every rendition's video bitrate and PSNR against the source; BD-rate and BD-PSNR of the
per-title rungs against the fixed ones. All on the CPU so the runs compare like with like.
"""
from __future__ import annotations

import resource
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

from framepress.bench.bdrate import bd_psnr, bd_rate
from framepress.bench.pertitle_sources import SOURCES, ContentSource, make

FIXED = "default"
PER_TITLE = "auto"


@dataclass
class PerTitleOptions:
    work_dir: Path
    full: bool = False                       # 1080p30, 20 s sources instead of 720p30, 4 s
    sources: Optional[list[str]] = None      # names from SOURCES (default: all)
    extra_sources: list[Path] = field(default_factory=list)   # your own files ("yours")

    @property
    def size(self) -> tuple[int, int, int, float]:
        return (1920, 1080, 30, 20.0) if self.full else (1280, 720, 30, 4.0)


class Timer:
    """Wall and CPU seconds (user + system: every thread of this process, and the children it
    waited for) of a block."""

    def __enter__(self) -> "Timer":
        self._wall, self._cpu = time.perf_counter(), self._cpu_now()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = self._cpu_now() - self._cpu

    @staticmethod
    def _cpu_now() -> float:
        return sum(ru.ru_utime + ru.ru_stime for ru in (resource.getrusage(resource.RUSAGE_SELF),
                                                        resource.getrusage(resource.RUSAGE_CHILDREN)))


def _rungs(result, source: Path) -> list[dict]:
    from framepress import probe
    from framepress.bench.quality import psnr
    out = []
    for r in result.renditions:
        video = probe(r.path).video
        out.append({"name": r.name, "width": r.width, "height": r.height,
                    "bitrate": int(video.bitrate if video and video.bitrate else r.bitrate),
                    "psnr": round(psnr(r.path, str(source)), 3)})
    return out


def measure_source(name: str, kind: str, source: Path, work: Path, *, fixed_ladder=FIXED,
                   per_title_ladder=PER_TITLE) -> dict:
    import framepress
    from framepress.pertitle import choose_ladder
    shutil.rmtree(work, ignore_errors=True)
    with Timer() as fixed_t:
        fixed = framepress.transcode(source, work / "fixed", fixed_ladder, hwaccel="cpu")
    with Timer() as analysis_t:
        choice = choose_ladder(source, per_title_ladder)
    with Timer() as chosen_t:
        chosen = framepress.transcode(source, work / "per-title", choice.ladder, hwaccel="cpu")
    fixed_rungs, chosen_rungs = _rungs(fixed, source), _rungs(chosen, source)
    ref = [(r["bitrate"], r["psnr"]) for r in fixed_rungs]
    test = [(r["bitrate"], r["psnr"]) for r in chosen_rungs]
    rate, db = bd_rate(ref, test), bd_psnr(ref, test)
    shutil.rmtree(work, ignore_errors=True)
    return {
        "name": name, "kind": kind, "file": source.name,
        "fixed": {"rungs": fixed_rungs, "wall_s": round(fixed_t.wall, 3), "cpu_s": round(fixed_t.cpu, 3)},
        "per_title": {"rungs": chosen_rungs, "wall_s": round(chosen_t.wall, 3),
                      "cpu_s": round(chosen_t.cpu, 3), "choice": choice.to_dict()},
        "analysis": {"wall_s": round(analysis_t.wall, 3), "cpu_s": round(analysis_t.cpu, 3),
                     "share_wall": round(analysis_t.wall / chosen_t.wall, 4),
                     "share_cpu": round(analysis_t.cpu / chosen_t.cpu, 4) if chosen_t.cpu else None,
                     "whole_source": choice.trials["whole_source"],
                     "stretches": choice.trials["spans"]},
        "bits": {"fixed": sum(r["bitrate"] for r in fixed_rungs),
                 "per_title": sum(r["bitrate"] for r in chosen_rungs)},
        "bd_rate_pct": None if rate is None else round(rate, 2),
        "bd_psnr_db": None if db is None else round(db, 3),
    }


def summarise(sources: list[dict]) -> dict:
    def values(kind: str, key: str) -> list[float]:
        return [s[key] for s in sources if s["kind"] == kind and s[key] is not None]
    easy, hard = values("easy", "bd_rate_pct"), values("hard", "bd_psnr_db")
    shares = [s["analysis"]["share_wall"] for s in sources]
    cpu_shares = [s["analysis"]["share_cpu"] for s in sources if s["analysis"]["share_cpu"] is not None]
    return {
        "easy_bd_rate_mean_pct": round(sum(easy) / len(easy), 2) if easy else None,
        "hard_bd_psnr_min_db": round(min(hard), 3) if hard else None,
        "analysis_share_wall_max": round(max(shares), 4) if shares else None,
        "analysis_share_cpu_max": round(max(cpu_shares), 4) if cpu_shares else None,
        "goals": {
            "easy: >= 25 % fewer bits at equal quality (mean BD-rate <= -25 %)":
                bool(easy) and sum(easy) / len(easy) <= -25.0,
            "hard: never > 0.3 dB below at equal bits (every BD-PSNR >= -0.3 dB)":
                bool(hard) and min(hard) >= -0.3,
            "analysis <= 15 % of the transcode's wall time (every source)":
                bool(shares) and max(shares) <= 0.15,
        },
    }


def run_pertitle_bench(opts: PerTitleOptions, ffmpeg: str = "ffmpeg",
                       say: Callable[[str], None] = lambda line: None) -> dict:
    width, height, fps, seconds = opts.size
    chosen: list[ContentSource] = [s for s in SOURCES if not opts.sources or s.name in opts.sources]
    results = []
    for s in chosen:
        say(f"{s.name}: generating {width}x{height} {seconds:g} s")
        path = make(ffmpeg, s, opts.work_dir / "sources", width=width, height=height, fps=fps, seconds=seconds)
        say(f"{s.name}: fixed ladder, analysis, per-title ladder, PSNR")
        results.append(measure_source(s.name, s.kind, path, opts.work_dir / "pertitle" / s.name))
    for path in opts.extra_sources:
        say(f"{path.name}: fixed ladder, analysis, per-title ladder, PSNR")
        results.append(measure_source(path.stem, "yours", path, opts.work_dir / "pertitle" / path.stem))
    return {"finished_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "settings": {"size": f"{width}x{height}", "fps": fps, "seconds": seconds, "full": opts.full,
                         "fixed": FIXED, "per_title": PER_TITLE, "hwaccel": "cpu"},
            "sources": results, "summary": summarise(results)}


__all__ = ["PerTitleOptions", "run_pertitle_bench", "measure_source", "summarise"]
