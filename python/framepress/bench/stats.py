"""Summaries over rounds, and the engine-to-peer ratios, paired round by round."""
from __future__ import annotations

import statistics
from typing import Iterable, Sequence

METRICS = ("wall_s", "cpu_s", "peak_rss_mb", "fps", "cores_busy")


def summary(values: Iterable[float]) -> dict:
    v = [float(x) for x in values]
    if not v:
        return {}
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}


def summarise_rounds(rounds: Sequence[dict]) -> dict:
    return {m: summary(r[m] for r in rounds) for m in METRICS if all(m in r for r in rounds)}


def paired_ratios(engine_rounds: Sequence[dict], peer_rounds: Sequence[dict]) -> dict:
    """engine ÷ peer for each metric, one ratio per round in which both ran (rounds alternate
    systems, so round i of each was measured under nearly the same machine load)."""
    pairs = list(zip(engine_rounds, peer_rounds))
    return {m: summary(e[m] / p[m] for e, p in pairs if p.get(m))
            for m in ("wall_s", "cpu_s", "peak_rss_mb")}
