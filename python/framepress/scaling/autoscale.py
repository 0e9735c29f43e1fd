"""The scaling decision: a pure function of the pool's state, its utilization history and the clock.

Rules, in order:
1. Outside [minimum, maximum]: move back inside at once (no cooldown; a bound is not a guess).
2. Only samples taken after the last scaling count, and they must cover a whole window: the effect
   of one step is observed before the next one is judged.
3. Every sample in the window above `high`: one worker more; every sample below `low`: one fewer;
   anything else holds. The gap between the marks is the hysteresis band.
4. Cooldowns since the last scaling: short before adding (load waits in the queue), long before
   removing (a removed worker is slow to get back).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

Action = Literal["up", "down", "hold"]
Sample = tuple[float, float]  # (monotonic time in seconds, utilization 0-1)


@dataclass(frozen=True)
class Thresholds:
    high: float = 0.75
    low: float = 0.30
    window_s: float = 30.0
    up_cooldown_s: float = 30.0
    down_cooldown_s: float = 120.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.low < self.high <= 1.0:
            raise ValueError(f"need 0 <= low < high <= 1, got low={self.low} high={self.high}")
        if self.window_s <= 0 or self.up_cooldown_s < 0 or self.down_cooldown_s < 0:
            raise ValueError("window must be positive and cooldowns not negative")


@dataclass(frozen=True)
class Decision:
    action: Action
    target: int
    reason: str
    utilization: float | None = None  # mean over the judged window, when there was one

    def describe(self, current: int) -> str:
        util = "n/a" if self.utilization is None else f"{self.utilization:.2f}"
        return f"{self.action} workers={current}->{self.target} utilization={util}: {self.reason}"


def decide(current: int, minimum: int, maximum: int, samples: Sequence[Sample],
           last_scale_at: float | None, now: float, thresholds: Thresholds = Thresholds()) -> Decision:
    """What to do with a pool of `current` workers. `last_scale_at` is None before any scaling."""
    if not 0 <= minimum <= maximum:
        raise ValueError(f"need 0 <= minimum <= maximum, got {minimum}..{maximum}")
    if current < minimum:
        return Decision("up", minimum, f"below the minimum of {minimum}")
    if current > maximum:
        return Decision("down", maximum, f"above the maximum of {maximum}")

    t = thresholds
    window_start = now - t.window_s
    judged_from = window_start if last_scale_at is None else max(window_start, last_scale_at)
    window = [u for at, u in samples if judged_from <= at <= now]
    watched_since = min((at for at, _ in samples), default=now)
    if last_scale_at is not None:
        watched_since = max(watched_since, last_scale_at)
    if not window or watched_since > window_start:
        return Decision("hold", current, f"watching: less than {t.window_s:g}s of samples since the last change")

    mean = sum(window) / len(window)
    since_scale = float("inf") if last_scale_at is None else now - last_scale_at

    if min(window) > t.high:
        if current >= maximum:
            return Decision("hold", current, f"busy above {t.high:.2f} but at the maximum of {maximum}", mean)
        if since_scale < t.up_cooldown_s:
            return Decision("hold", current, f"busy above {t.high:.2f}, cooling down "
                            f"{t.up_cooldown_s - since_scale:.0f}s more", mean)
        return Decision("up", current + 1, f"above {t.high:.2f} for {t.window_s:g}s", mean)

    if max(window) < t.low:
        if current <= minimum:
            return Decision("hold", current, f"idle below {t.low:.2f} but at the minimum of {minimum}", mean)
        if since_scale < t.down_cooldown_s:
            return Decision("hold", current, f"idle below {t.low:.2f}, cooling down "
                            f"{t.down_cooldown_s - since_scale:.0f}s more", mean)
        return Decision("down", current - 1, f"below {t.low:.2f} for {t.window_s:g}s", mean)

    return Decision("hold", current, f"within the band {t.low:.2f}..{t.high:.2f} or mixed", mean)
