"""The service's failure policy (issue 4), behind the worker's `FailurePolicy` seam (failure.py).

- permanent errors escalate at once;
- transient errors retry after exponential backoff with jitter, held by the broker's delay queues,
  until the task's max_attempts is used up, then escalate;
- dependency errors (S3 or the database not answering) *defer*: the attempt is given back, the
  dependency's circuit breaker counts the failure (and pauses consuming once it opens), and the
  task comes back after a short delay. An outage therefore escalates nothing.

Escalation notices (the framepress.escalations message, the metric, the webhook) go out from
`on_escalated`, after the worker has committed the `escalated` status and event.
"""
from __future__ import annotations

import logging
from typing import Callable, Optional

from . import escalation
from .breaker import Breakers, CircuitBreaker
from .failure import DEFER, ESCALATE, RETRY, Decision, Failure
from .retry import DEPENDENCY, PERMANENT, RetryPolicy, classify

log = logging.getLogger("framepress.worker")

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
                 publish: Optional[Callable[[dict], None]] = None,
                 webhook_url: Optional[str] = None,
                 metric: Optional[Callable[[], None]] = None,
                 retry_metric: Optional[Callable[[], None]] = None,
                 worker_id: Optional[str] = None) -> None:
        """`publish(message)` puts an escalation notice on framepress.escalations (the worker
        passes its broker's publish); `metric`/`retry_metric` count escalations and retries."""
        self.retry = retry or RetryPolicy()
        self.breakers = breakers
        self.publish = publish
        self.webhook_url = webhook_url
        self.metric = metric
        self.retry_metric = retry_metric
        self.worker_id = worker_id

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

    def on_escalated(self, failure: Failure, decision: Decision) -> None:
        message = escalation.build_message(
            failure.task_id, failure.stage, failure.message, failure.attempt,
            kind=decision.data.get("escalation", ""), reason=decision.reason,
            max_attempts=failure.max_attempts, worker_id=self.worker_id)
        if self.publish is not None:
            try:
                self.publish(message)
            except Exception:  # the status and event are committed; the notice is best effort
                log.exception("could not publish the escalation notice",
                              extra={"task_id": failure.task_id})
        escalation.escalate(None, message, webhook_url=self.webhook_url, metric=self.metric)

    def _breaker(self, name: str) -> Optional[CircuitBreaker]:
        return self.breakers.get(name) if self.breakers is not None else None


__all__ = ["BackoffPolicy", "DEFER", "dependency_of", "dependency_of_error"]
