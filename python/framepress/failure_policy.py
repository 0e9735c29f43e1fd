"""The service's failure policy (issue 4), behind the worker's `FailurePolicy` seam (failure.py).

- permanent errors escalate at once;
- transient errors retry after exponential backoff with jitter, held by the broker's delay queues,
  until the task's max_attempts is used up, then escalate;
- dependency errors (S3 or the database not answering) *defer*: the attempt is given back, the
  dependency's circuit breaker counts the failure (and pauses consuming once it opens), and the
  task comes back after a short delay. An outage therefore escalates nothing.

Escalation notices (the framepress.escalations message, the webhook) are staged with the
`escalated` status and sent by the outbox relay (`escalation.notices`).
"""
from __future__ import annotations

from typing import Callable, Optional

from .breaker import Breakers, CircuitBreaker
from .failure import DEFER, ESCALATE, RETRY, Decision, Failure
from .retry import DEPENDENCY, PERMANENT, RetryPolicy, classify

# Which dependency a stage's failure points at, for picking the breaker.
STAGE_DEPENDENCY = {"pull": "s3", "upload": "s3", "details": "database", "succeed": "database",
                    "transcode": "s3"}


def dependency_of(failure: Failure) -> str:
    """"s3" or "database": the error's own type wins over the stage it happened in."""
    return dependency_of_error(failure.error, STAGE_DEPENDENCY.get(failure.stage, "s3"))


def dependency_of_error(error: BaseException, default: str = "s3") -> str:
    names = " ".join(type(e).__module__ + "." + type(e).__name__ for e in _links(error))
    if "sqlalchemy" in names or "psycopg" in names:
        return "database"
    if "botocore" in names or "boto3" in names or "Storage" in names:
        return "s3"
    if "pika" in names or "Broker" in names:
        return "broker"
    return default


def _links(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


class BackoffPolicy:
    def __init__(self, retry: Optional[RetryPolicy] = None, *,
                 breakers: Optional[Breakers] = None,
                 retry_metric: Optional[Callable[[], None]] = None) -> None:
        """`retry_metric` counts retries."""
        self.retry = retry or RetryPolicy()
        self.breakers = breakers
        self.retry_metric = retry_metric

    def decide(self, failure: Failure) -> Decision:
        kind = classify(failure.error, failure.stage)
        data = {"class": kind, "error_type": type(failure.error).__name__}
        if kind == DEPENDENCY:
            dep = dependency_of(failure)
            breaker = self._breaker(dep)
            delay = self.retry.min_delay
            if breaker is not None:
                breaker.record_failure(failure.message)
                delay = max(delay, breaker.seconds_until_probe())
            return Decision(DEFER, f"{dep} unavailable at {failure.stage}; attempt not counted",
                            delay_s=delay, data={**data, "dependency": dep})
        if kind == PERMANENT:
            return Decision(ESCALATE, f"permanent error at {failure.stage}",
                            data={**data, "escalation": "permanent"})
        if failure.attempt >= failure.max_attempts:
            return Decision(ESCALATE, f"attempts exhausted ({failure.attempt} of "
                                      f"{failure.max_attempts})",
                            data={**data, "escalation": "exhausted"})
        delay = self.retry.delay_for(failure.attempt)
        if self.retry_metric is not None:
            self.retry_metric()
        return Decision(RETRY, f"attempt {failure.attempt} of {failure.max_attempts} failed; "
                               f"retrying in {delay:.1f} s",
                        delay_s=delay, data={**data, "delay_s": round(delay, 3),
                                             "next_attempt": failure.attempt + 1})

    def _breaker(self, name: str) -> Optional[CircuitBreaker]:
        return self.breakers.get(name) if self.breakers is not None else None


__all__ = ["BackoffPolicy", "DEFER", "dependency_of", "dependency_of_error"]
