"""What happens to a task after a failed attempt, decided from the failure's classification:

- permanent errors escalate at once;
- transient errors retry after exponential backoff with jitter (held by the broker's delay
  queues) until the task's max_attempts is used up, then escalate;
- outages of a dependency (S3 or the database) *defer*: the attempt is given back, the
  dependency's circuit breaker counts the failure (and pauses consuming once it opens), and the
  task comes back after a short delay. An outage therefore spends no attempt and escalates
  nothing — until the task's deadline (FRAMEPRESS_TASK_DEADLINE, from its submission) has passed:
  then it escalates with that reason, so an error that never clears cannot defer forever.

Escalation notices (the framepress.escalations message, the webhook) are staged with the
`escalated` status and sent by the outbox relay (`escalation.notices`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from framepress.service.failure.backoff import RetryPolicy
from framepress.service.failure.breaker import Breakers
from framepress.service.failure.classification import DEPENDENCY, PERMANENT, classify, dependency_of

RETRY = "retry"
ESCALATE = "escalate"
DEFER = "defer"

DEFAULT_DEADLINE_S = 24 * 3600.0

# Which dependency a stage's outage points at when the error itself does not say.
STAGE_DEPENDENCY = {"pull": "s3", "upload": "s3", "transcode": "s3", "details": "database",
                    "succeed": "database"}


@dataclass(frozen=True)
class Decision:
    action: str                 # RETRY | ESCALATE | DEFER
    reason: str
    delay_s: float = 0.0        # how long the broker holds the task before the next attempt
    data: dict[str, Any] = field(default_factory=dict)   # extra event details


@dataclass(frozen=True)
class Failure:
    """One failed attempt, as the policy sees it."""
    task_id: str
    stage: str                  # details | pull | transcode | upload | succeed
    error: BaseException
    attempt: int
    max_attempts: int
    age_s: float = 0.0          # seconds since the task was submitted

    @property
    def message(self) -> str:
        return f"{type(self.error).__name__}: {self.error}"


def error_details(error: BaseException, stage: Optional[str] = None) -> dict[str, Any]:
    """The `error` event's data: the error's type, its class and the engine's details."""
    kind = classify(error, stage)
    out: dict[str, Any] = {"type": type(error).__name__, "class": kind,
                           "permanent": kind == PERMANENT}
    step: Optional[str] = getattr(error, "step", None)
    if step:
        out["step"] = step
    ffmpeg = getattr(error, "ffmpeg_message", "")
    if ffmpeg:
        out["ffmpeg_message"] = ffmpeg
    return out


class BackoffPolicy:
    def __init__(self, retry: Optional[RetryPolicy] = None, *,
                 breakers: Optional[Breakers] = None,
                 deadline_s: float = DEFAULT_DEADLINE_S) -> None:
        """`deadline_s` bounds how long outages may defer a task."""
        self.retry = retry or RetryPolicy()
        self.breakers = breakers
        self.deadline_s = deadline_s

    def decide(self, failure: Failure, previous_delay: Optional[float] = None) -> Decision:
        """`previous_delay`: the delay before this attempt, for decorrelated jitter."""
        kind = classify(failure.error, failure.stage)
        data: dict[str, Any] = {"class": kind, "error_type": type(failure.error).__name__}
        if kind == PERMANENT:
            return Decision(ESCALATE, f"permanent error at {failure.stage}",
                            data={**data, "escalation": "permanent"})
        if kind == DEPENDENCY:
            dep = dependency_of(failure.error, STAGE_DEPENDENCY.get(failure.stage, "s3"))
            breaker = self.breakers.get(dep) if self.breakers is not None else None
            if breaker is not None:
                breaker.record_failure(failure.message)
            if failure.age_s >= self.deadline_s:
                return Decision(ESCALATE, f"deadline of {self.deadline_s:.0f} s passed with "
                                          f"{dep} unavailable",
                                data={**data, "dependency": dep, "escalation": "deadline",
                                      "deadline_s": self.deadline_s})
            delay = self.retry.min_delay
            if breaker is not None:
                delay = max(delay, breaker.seconds_until_probe())
            return Decision(DEFER, f"{dep} unavailable at {failure.stage}; attempt not counted",
                            delay_s=delay, data={**data, "dependency": dep})
        if failure.attempt >= failure.max_attempts:
            return Decision(ESCALATE, f"attempts exhausted ({failure.attempt} of "
                                      f"{failure.max_attempts})",
                            data={**data, "escalation": "exhausted"})
        delay = self.retry.delay_for(failure.attempt, previous_delay)
        return Decision(RETRY, f"attempt {failure.attempt} of {failure.max_attempts} failed; "
                               f"retrying in {delay:.1f} s",
                        delay_s=delay, data={**data, "delay_s": round(delay, 3),
                                             "next_attempt": failure.attempt + 1})


__all__ = ["BackoffPolicy", "DEFER", "Decision", "ESCALATE", "Failure", "RETRY",
           "error_details"]
