"""A short retry around the database writes that record a finished stage (`transcoded`,
`uploaded`, `succeeded`, …), so that a blip of the database (a dropped connection, a restart of a
second or two) does not throw away an encode that is already done.

Only outages are retried (`classification`: the database unreachable or its connection lost).
Anything else is raised at once: above all `StaleLease`, so a write the lease fences off is never
retried into success. A longer outage is raised after `STAGE_WRITE_RETRY_S`, and the attempt is
deferred like any other outage (no attempt spent).
"""
from __future__ import annotations

import logging
from typing import Callable, Optional, TypeVar

from tenacity import (Retrying, retry_if_exception, stop_after_delay, wait_exponential)

from framepress.service.failure.classification import DEPENDENCY, classify

log = logging.getLogger("framepress.worker")

#: How long a stage's record is retried before the outage is handled as one.
STAGE_WRITE_RETRY_S = 5.0

T = TypeVar("T")


def _is_outage(exc: BaseException) -> bool:
    return classify(exc) == DEPENDENCY


def _log_retry(state) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning("stage record failed (%r); retrying in %.1f s", exc,
                state.next_action.sleep if state.next_action else 0.0)


def retry_stage_write(write: Callable[[], T], *, already_done: Optional[Callable[[], bool]] = None,
                      within_s: float = STAGE_WRITE_RETRY_S) -> Optional[T]:
    """`write()`, again while it fails with an outage, for up to `within_s` seconds.

    `already_done()` is asked before each retry: a commit whose acknowledgement was lost with the
    connection may have landed, and a write that must happen once (the success) is not repeated.
    """
    retrying = Retrying(retry=retry_if_exception(_is_outage), stop=stop_after_delay(within_s),
                        wait=wait_exponential(multiplier=0.2, max=1.0), reraise=True,
                        before_sleep=_log_retry)
    for attempt in retrying:
        with attempt:
            if attempt.retry_state.attempt_number > 1 and already_done is not None \
                    and already_done():
                return None
            return write()
    return None  # not reached: the last failure is re-raised


__all__ = ["retry_stage_write", "STAGE_WRITE_RETRY_S"]
