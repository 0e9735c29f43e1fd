"""Bjøntegaard deltas between two rate–quality curves (here: two ladders' rungs).

Each curve is its points (bits/s, PSNR dB) in order of rate, keeping only points that raise the
quality (a player never picks a rung that costs more for less). Between points the curve is
interpolated linearly in (log rate, PSNR), the form of a ladder's switching points; the deltas
average over the range both curves cover:

- BD-rate: the mean difference of log rate at equal quality, as a percentage (negative: the
  test curve needs fewer bits for the same quality).
- BD-PSNR: the mean difference of quality at equal log rate, dB (negative: the test curve is
  worse at the same bits).

With fewer than two points on a curve, or no overlap, the delta is None.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

Point = tuple[float, float]       # (bits/s, PSNR dB)
GRID = 200


def hull(points: Sequence[Point]) -> list[Point]:
    out: list[Point] = []
    for rate, q in sorted(points):
        if rate > 0 and math.isfinite(q) and (not out or q > out[-1][1]):
            out.append((rate, q))
    return out


def _mean_gap(xa: np.ndarray, ya: np.ndarray, xb: np.ndarray, yb: np.ndarray) -> Optional[float]:
    """Mean of yb(x) - ya(x) over the x range both cover (x increasing in both)."""
    lo, hi = max(xa[0], xb[0]), min(xa[-1], xb[-1])
    if hi <= lo:
        return None
    x = np.linspace(lo, hi, GRID)
    return float(np.mean(np.interp(x, xb, yb) - np.interp(x, xa, ya)))


def bd_rate(reference: Sequence[Point], test: Sequence[Point]) -> Optional[float]:
    """Percent of bits `test` spends against `reference` at equal quality."""
    a, b = hull(reference), hull(test)
    if len(a) < 2 or len(b) < 2:
        return None
    gap = _mean_gap(np.array([q for _, q in a]), np.log([r for r, _ in a]),
                    np.array([q for _, q in b]), np.log([r for r, _ in b]))
    return None if gap is None else (math.exp(gap) - 1.0) * 100.0


def bd_psnr(reference: Sequence[Point], test: Sequence[Point]) -> Optional[float]:
    """dB `test` gains (positive) or loses against `reference` at equal bits."""
    a, b = hull(reference), hull(test)
    if len(a) < 2 or len(b) < 2:
        return None
    return _mean_gap(np.log([r for r, _ in a]), np.array([q for _, q in a]),
                     np.log([r for r, _ in b]), np.array([q for _, q in b]))


__all__ = ["bd_rate", "bd_psnr", "hull"]
