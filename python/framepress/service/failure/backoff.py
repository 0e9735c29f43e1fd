"""Backoff between a task's attempts: exponential, capped, with jitter."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Optional

JITTERS = ("full", "decorrelated", "none")


@dataclass
class RetryPolicy:
    """Exponential backoff: attempt n (1-based, the attempt that just failed) waits about
    ``initial * factor**(n-1)`` seconds, capped at ``maximum``, with jitter."""

    initial: float = 2.0
    factor: float = 2.0
    maximum: float = 300.0
    max_attempts: int = 5
    jitter: str = "full"
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.jitter not in JITTERS:
            raise ValueError(f"jitter must be one of {JITTERS}, not {self.jitter!r}")
        if self.initial <= 0 or self.factor < 1 or self.maximum < self.initial:
            raise ValueError("need initial > 0, factor >= 1 and maximum >= initial")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    @classmethod
    def from_settings(cls, settings, **overrides) -> "RetryPolicy":
        """The policy of resolved `Settings` (FRAMEPRESS_RETRY_* and FRAMEPRESS_MAX_ATTEMPTS);
        overrides win."""
        kw = dict(initial=settings.retry_initial, factor=settings.retry_factor,
                  maximum=settings.retry_max, max_attempts=settings.max_attempts,
                  jitter=settings.retry_jitter)
        kw.update(overrides)
        return cls(**kw)

    def base_delay(self, attempt: int) -> float:
        """The un-jittered delay after failed attempt `attempt` (1-based)."""
        attempt = max(1, attempt)
        # Cap the exponent so huge attempt numbers cannot overflow a float.
        exp = min(attempt - 1, 64)
        return min(self.maximum, self.initial * self.factor ** exp)

    def delay_for(self, attempt: int, previous: Optional[float] = None) -> float:
        """Seconds to wait before retrying after failed attempt `attempt`.

        full: uniform(0, base) (AWS "full jitter"), floored at the smallest delay step so a retry
        never comes back instantly. decorrelated: uniform(initial, 3 * previous), capped, where
        `previous` is the delay before the attempt that failed (when unknown, the un-jittered
        delay of the attempt before), so delays grow from attempt to attempt.
        """
        base = self.base_delay(attempt)
        if self.jitter == "none":
            return base
        if self.jitter == "full":
            return max(self.min_delay, self.rng.uniform(0.0, base))
        if previous is None or previous <= 0:
            previous = self.base_delay(attempt - 1) if attempt > 1 else self.initial
        return min(self.maximum, self.rng.uniform(self.initial, max(self.initial, previous * 3)))

    @property
    def min_delay(self) -> float:
        return self.initial / 2

    def delay_steps(self) -> list[float]:
        """The delays (seconds) the broker holds messages for: one delay queue per step.

        A geometric ladder from initial/2 to maximum with ratio sqrt(factor), so a jittered delay
        rounded up to the next step is at most ~41 % (for factor 2) longer than asked.
        """
        ratio = max(self.factor ** 0.5, 1.25)
        steps, k = [], 0
        while self.min_delay * ratio ** k < self.maximum:
            steps.append(round(self.min_delay * ratio ** k, 3))
            k += 1
        steps.append(round(self.maximum, 3))
        return sorted(set(steps))
