"""Constant-quality trial encodes: how many bits the content needs at the target quality.

Each sampled stretch (`sampling`; the engine seeks to it) is encoded with x264 at the target CRF at two sizes: the top rung's (the
largest the source feeds) and 360p (or the source's own size if smaller), on the CPU so the figure
does not depend on the worker's hardware. CRF holds perceived quality steady whatever the
content, so the bits it spends measure how hard the content is; the two sizes tell how those bits
grow with resolution. The top rung is measured, not extrapolated, because small trials cannot see
what only full resolution keeps: on the bench, CRF 23 at 1080p costs 57× its 360p bits on film
grain but 2.3× on slides, while a power law from 180p and 360p predicted 5× and 3×.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from framepress.ladder import Ladder, Rung
from framepress.pertitle.sampling import stretches

LOW_TRIAL = 360
CLOSE = 0.75     # a low trial within this fraction of the top one adds nothing


@dataclass
class Trials:
    """Video bits per second at the target CRF, per trial height (short side), over the sampled
    stretches."""
    crf: int
    preset: str
    bitrates: dict[int, float]                 # trial height -> video bits/s
    spans: list[tuple[float, float]]           # the stretches encoded, seconds
    whole_source: bool                         # the whole source was encoded
    seconds: float = 0.0                       # wall time of the analysis
    per_span: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["bitrates"] = {str(h): round(b) for h, b in self.bitrates.items()}
        return d


def trial_heights(template: Ladder, short_side: int) -> list[int]:
    """The top rung's height (the source's own, if every rung is above it) and 360p."""
    fits = [r.height for r in template.rungs if r.height <= short_side and r.crf is None]
    top = max(fits) if fits else short_side & ~1
    heights = [top]
    low = min(LOW_TRIAL, min(fits) if fits else top)
    if low < top * CLOSE:
        heights.append(low)
    return heights


def _video_bitrate(path: str, probe) -> float:
    video = probe(path).video
    return float(video.bitrate) if video is not None else 0.0


def run_trials(source: str, template: Ladder, short_side: int, duration: float, *, crf: int,
               cancel: Optional[Any] = None, scratch: Optional[Path] = None) -> Trials:
    """Encode the sampled stretches of `source` at `crf`; bits per second per trial height."""
    from framepress.engine import probe, transcode   # the engine module calls in here

    started = time.monotonic()
    preset = next((r.preset for r in template.rungs if r.crf is None), "veryfast")
    heights = trial_heights(template, short_side)
    ladder = Ladder(name="per-title-trial", gop_seconds=template.gop_seconds,
                    segment_seconds=template.segment_seconds,
                    rungs=tuple(Rung(f"trial{h}", h, crf=crf, preset=preset) for h in heights))
    spans = stretches(duration, template.gop_seconds)
    whole = spans == [(0.0, max(duration, 0.0))]
    work = Path(tempfile.mkdtemp(prefix="framepress-pertitle-", dir=scratch))
    weighted = {h: 0.0 for h in heights}
    total = 0.0
    per_span = []
    try:
        for i, (start, end) in enumerate(spans):
            ranged = {} if whole else {"start": start, "end": end}
            result = transcode(source, work / f"out{i}", ladder, hwaccel="cpu", cancel=cancel, **ranged)
            length = (end - start) if end > start else 1.0
            rates = {}
            for r in result.renditions:
                h = int(r.name.removeprefix("trial"))
                rates[h] = _video_bitrate(r.path, probe)
                weighted[h] += rates[h] * length
            total += length
            per_span.append({"start": start, "end": end, "bitrates": {str(h): round(b) for h, b in rates.items()}})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Trials(crf=crf, preset=preset, bitrates={h: weighted[h] / total for h in heights},
                  spans=spans, whole_source=whole, seconds=time.monotonic() - started, per_span=per_span)


__all__ = ["Trials", "run_trials", "trial_heights"]
