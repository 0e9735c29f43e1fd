"""What one delivery ends as, and how its message is settled.

The worker's loop returns one of these for every delivery instead of setting flags; the outcome
names the `framepress_tasks_total` label (for the ones that ran an attempt) and how the broker's
message is settled once everything is committed:

    ack      the task's fate is recorded (or another worker has the message's work)
    requeue  hand the message back (nothing recorded, or the task was returned by a drain)
    reject   dead-letter a message that can never be processed
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

ACK = "ack"
REQUEUE = "requeue"
REJECT = "reject"


@dataclass(frozen=True)
class Outcome:
    reason: str = ""
    name: ClassVar[str] = ""
    settle: ClassVar[str] = ACK
    #: Whether an attempt ran (counted in framepress_tasks_total under `name`).
    attempted: ClassVar[bool] = True


# --- an attempt ran ---------------------------------------------------------------------------
class Succeeded(Outcome):
    name = "succeeded"


class LeaseLost(Outcome):
    """Another worker took the task over; it has its own message, ours carries nothing more."""
    name = "lease_lost"


class Returned(Outcome):
    """A forced drain cancelled the attempt and gave it back; the message goes back too."""
    name = "returned"
    settle = REQUEUE


class TimedOut(Outcome):
    """The attempt ran past the task time limit; the policy then retried or escalated it."""
    name = "timed_out"


class Deferred(Outcome):
    """A dependency was down: the attempt was given back and the task comes back later."""
    name = "deferred"


class Retrying(Outcome):
    name = "retry"


class Escalated(Outcome):
    name = "escalated"


# --- no attempt ran ---------------------------------------------------------------------------
class Duplicate(Outcome):
    """The task was already settled, or escalated at take (no attempts left)."""
    name = "duplicate"
    attempted = False


class Postponed(Outcome):
    """An early copy of a task still waiting out its backoff, sent on to when it is due."""
    name = "postponed"
    attempted = False


class EscalatedWithoutAttempt(Outcome):
    """Delivered again with no attempts left: escalated without running it."""
    name = "escalated_without_attempt"
    attempted = False


class Rejected(Outcome):
    """A message that can never be processed (not JSON, no task_id, unknown task)."""
    name = "rejected"
    settle = REJECT
    attempted = False


class Requeued(Outcome):
    """Nothing was recorded (a dependency is down, the worker is stopping, or an unexpected
    error escaped): the message goes back to the queue."""
    name = "requeued"
    settle = REQUEUE
    attempted = False


#: Labels of framepress_tasks_total, for initialising every series at 0.
TASK_OUTCOMES = tuple(c.name for c in (Succeeded, LeaseLost, Returned, TimedOut, Deferred,
                                       Retrying, Escalated))

__all__ = ["ACK", "REQUEUE", "REJECT", "Outcome", "Succeeded", "LeaseLost", "Returned",
           "TimedOut", "Deferred", "Retrying", "Escalated", "Duplicate", "Postponed",
           "EscalatedWithoutAttempt", "Rejected", "Requeued", "TASK_OUTCOMES"]
