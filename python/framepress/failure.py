"""What happens to a task after a failed attempt: the one seam for retry and escalation policy.

The worker calls `policy.decide(...)` with the error and applies the `Decision` (status, events,
republish, escalation notices, metrics) itself. The service's policy (exponential backoff with
jitter, circuit breakers) replaces `SimplePolicy` by implementing the same method and is passed to
`Worker(policy=...)`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Protocol

from .errors import FramepressError, InputError, LadderError
from .service_errors import ConfigError, SourceMissing

RETRY = "retry"
ESCALATE = "escalate"
#: A dependency (S3, the database) failed, not the task: retry after `delay_s` without counting
#: the attempt.
DEFER = "defer"


@dataclass(frozen=True)
class Decision:
    action: str                 # RETRY | ESCALATE | DEFER
    reason: str
    delay_s: float = 0.0        # how long the broker should hold the retry
    data: dict[str, Any] = field(default_factory=dict)   # extra event details


@dataclass(frozen=True)
class Failure:
    """One failed attempt, as the policy sees it."""
    task_id: str
    stage: str                  # details | pull | transcode | upload | succeed
    error: BaseException
    attempt: int
    max_attempts: int

    @property
    def message(self) -> str:
        return f"{type(self.error).__name__}: {self.error}"

    @property
    def permanent(self) -> bool:
        return is_permanent(self.error)


def is_permanent(error: BaseException) -> bool:
    """Errors that the same input will always hit again: never worth a retry."""
    if isinstance(error, (InputError, LadderError, SourceMissing, ConfigError)):
        return True
    if isinstance(error, FramepressError):
        return not error.transient
    return False  # unexpected errors (network, database) may pass


class FailurePolicy(Protocol):
    def decide(self, failure: Failure) -> Decision: ...


class SimplePolicy:
    """Permanent errors escalate at once; others retry at once until `max_attempts` is used up."""

    def decide(self, failure: Failure) -> Decision:
        if failure.permanent:
            return Decision(ESCALATE, f"permanent error at {failure.stage}")
        if failure.attempt >= failure.max_attempts:
            return Decision(ESCALATE, f"attempts exhausted ({failure.attempt} of {failure.max_attempts})")
        return Decision(RETRY, f"attempt {failure.attempt} of {failure.max_attempts} failed")


def error_details(error: BaseException) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type(error).__name__, "permanent": is_permanent(error)}
    step: Optional[str] = getattr(error, "step", None)
    if step:
        out["step"] = step
    ffmpeg = getattr(error, "ffmpeg_message", "")
    if ffmpeg:
        out["ffmpeg_message"] = ffmpeg
    return out
