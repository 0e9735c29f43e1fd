"""From trial bits to a concrete ladder: each rung's bitrate, which rungs stay, and why.

Pure arithmetic over the trial figures, so the same trials always give the same ladder:

- Bits a rung needs at the target quality: measured for the top rung and 360p; in between, the
  power law through the two trials (bits ~ height^k); below the lowest trial, the same law with k
  kept within 1..2. The rung's average bitrate is what CRF spent (`HEADROOM` 1: on the bench, more
  only moved the per-title points along the fixed ladder's curves at a higher cost).
- Within the rung's limits: raised to `min_bitrate`, lowered to `max_bitrate` (0: the rung's own
  bitrate, so a fixed ladder switched to per-title never spends more than it did). The built-in
  `auto` has no minimums: a player needs no floor (it picks the highest rung whose advertised
  bandwidth fits its throughput; a cheaper rung only plays on more links), and CRF's bits already
  hold the quality. A floor binds only on content that needs less: clean still pictures cost
  x264 CRF 23 26-455 kb/s at 1080p (49-59 dB at that size), where `auto`'s old 1 Mb/s floor
  spent bits no viewer sees. A ladder may still set them (a CDN's or a contract's minimum).
- The bits above what the target quality needs add no visible quality: every rung, the top one
  first, is capped there, however much the fixed ladder would have spent.
- A rung whose bitrate is within `MIN_STEP` of the rung kept above it adds too little (a player
  gains nearly nothing by switching down to it) and is dropped; the lowest rung always stays, for
  the slowest links.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from framepress.ladder import Ladder, Rung
from framepress.pertitle.trials import Trials

TARGET_CRF = 23              # x264's default: good quality on a TV at the rung's own size
EXPONENT_RANGE = (1.0, 2.0)  # bits ~ height^k below the lowest trial
EXPONENT_ONE_TRIAL = 1.5     # k when the source was too small for two trial sizes
HEADROOM = 1.0               # the chosen average bitrate over CRF's
MIN_STEP = 1.25              # adjacent rungs must differ at least this much in bitrate
ROUND_TO = 1000              # bits/s


@dataclass
class RungChoice:
    name: str
    height: int
    fixed_bitrate: int        # what the template ladder says
    needed: int               # bits/s the content needs at the target quality (0: not estimated)
    bitrate: int              # chosen (0: not encoded)
    kept: bool
    reason: str
    min_bitrate: int = 0
    max_bitrate: int = 0


@dataclass
class LadderChoice:
    """The concrete ladder chosen for one source, and the evidence for it."""
    ladder: Ladder
    template: str
    target_crf: int
    exponent: float
    rungs: list[RungChoice]
    trials: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"template": self.template, "target_crf": self.target_crf,
                "exponent": round(self.exponent, 3), "ladder": self.ladder.to_dict(),
                "rungs": [asdict(r) for r in self.rungs], "trials": self.trials}


def _exponent(bitrates: dict[int, float]) -> float:
    """k of bits ~ height^k between the smallest and the largest trial."""
    heights = sorted(h for h, b in bitrates.items() if b > 0)
    if len(heights) < 2:
        return EXPONENT_ONE_TRIAL
    lo, hi = heights[0], heights[-1]
    return math.log(bitrates[hi] / bitrates[lo]) / math.log(hi / lo)


def needed_bitrate(bitrates: dict[int, float], height: int) -> int:
    """Bits/s for `height` at the trials' quality: the trial at that height, else the power law
    through the trials around it, else (below the smallest) k within EXPONENT_RANGE."""
    known = sorted(h for h, b in bitrates.items() if b > 0)
    if not known:
        return 0
    k = _exponent(bitrates)
    if height < known[0]:
        base, k = known[0], min(EXPONENT_RANGE[1], max(EXPONENT_RANGE[0], k))
    else:
        base = max(h for h in known if h <= height)
    return _rounded(bitrates[base] * (height / base) ** k * HEADROOM)


def _rounded(bps: float) -> int:
    return max(ROUND_TO, int(round(bps / ROUND_TO)) * ROUND_TO)


def _kb(bps: int) -> str:
    return f"{bps / 1000:.0f} kb/s"


def _within_limits(rung: Rung, needed: int) -> tuple[int, str]:
    low = rung.min_bitrate
    high = rung.max_bitrate or rung.bitrate
    quality = f"CRF {TARGET_CRF} at {rung.height}p needs {_kb(needed)}"
    if low and needed < low:
        return low, f"{quality}: raised to the rung's minimum {_kb(low)}"
    if high and needed > high:
        return high, f"{quality}: limited to the rung's maximum {_kb(high)}"
    if needed < rung.bitrate:
        return needed, (f"{quality}: capped there, more bits add no visible quality "
                        f"(the fixed ladder spends {_kb(rung.bitrate)})")
    return needed, f"{quality} (the fixed ladder spends {_kb(rung.bitrate)})"


def _drop_close_rungs(choices: list[RungChoice]) -> None:
    """Top down: a rung within MIN_STEP of the kept rung above it is dropped, except the lowest;
    if the lowest is within MIN_STEP of the rung kept above it, that one goes (unless it is the
    top)."""
    active = [c for c in choices if c.kept and c.bitrate > 0]
    if len(active) < 2:
        return
    kept = [active[0]]
    for c in active[1:-1]:
        ratio = kept[-1].bitrate / c.bitrate
        if ratio < MIN_STEP:
            c.kept = False
            c.reason += f"; dropped: {kept[-1].name} costs only {ratio:.2f}× its bits"
        else:
            kept.append(c)
    lowest = active[-1]
    ratio = kept[-1].bitrate / lowest.bitrate
    if ratio < MIN_STEP and len(kept) > 1:
        above = kept[-1]
        above.kept = False
        above.reason += f"; dropped: only {ratio:.2f}× the bits of {lowest.name}, the lowest rung"


def decide(template: Ladder, trials: Trials, short_side: int) -> LadderChoice:
    """The concrete ladder for a source of `short_side` pixels whose trial encodes gave `trials`."""
    exponent = _exponent(trials.bitrates)
    rungs = sorted(template.rungs, key=lambda r: r.height, reverse=True)
    fits = [r for r in rungs if r.height <= short_side]
    choices: list[RungChoice] = []
    for r in rungs:
        if r.height > short_side and fits:
            choices.append(RungChoice(r.name, r.height, r.bitrate, 0, 0, False,
                                      f"above the source's {short_side}p: not encoded"))
    if not fits:
        # Smaller than every rung: one rendition at its own size with the lowest rung's settings,
        # named as the engine names it.
        lowest = rungs[-1]
        size = short_side & ~1
        fits = [replace(lowest, name=f"{size}p", height=size)]
        choices += [RungChoice(r.name, r.height, r.bitrate, 0, 0, False,
                               f"above the source's {short_side}p: the source is encoded once at "
                               f"its own size as {size}p") for r in rungs]
    for r in fits:
        if r.crf is not None:
            choices.append(RungChoice(r.name, r.height, 0, 0, 0, True,
                                      f"constant quality (CRF {r.crf}): left as it is"))
            continue
        needed = needed_bitrate(trials.bitrates, r.height)
        bitrate, why = _within_limits(r, needed)
        choices.append(RungChoice(r.name, r.height, r.bitrate, needed, bitrate, True, why,
                                  r.min_bitrate, r.max_bitrate or r.bitrate))
    _drop_close_rungs([c for c in choices if c.bitrate > 0])
    chosen = {c.name: c for c in choices if c.kept}
    concrete = tuple(replace(r, bitrate=chosen[r.name].bitrate or r.bitrate, min_bitrate=0, max_bitrate=0)
                     for r in fits if r.name in chosen)
    ladder = replace(template, rungs=concrete, per_title=False).validate()
    return LadderChoice(ladder=ladder, template=template.name, target_crf=trials.crf,
                        exponent=exponent, rungs=choices, trials=trials.to_dict())


__all__ = ["LadderChoice", "RungChoice", "decide", "needed_bitrate", "TARGET_CRF", "MIN_STEP"]
