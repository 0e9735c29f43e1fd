"""Start-up while a dependency is down: wait for it, as a running worker waits out an outage.

A worker that exited because the database or the broker did not answer yet would be restarted by
Kubernetes with a back-off that grows to five minutes (CrashLoopBackOff): the fleet would come back
minutes after its dependency did. Only an error that waiting cannot cure ends the start.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, TypeVar

from framepress.service.failure.classification import DEPENDENCY, classify, dependency_of

T = TypeVar("T")
log = logging.getLogger("framepress.worker")


def when_reachable(start: Callable[[], T], *, first_delay: float = 0.5, max_delay: float = 15.0,
                   sleep: Callable[[float], None] = time.sleep) -> T:
    """`start()`, again after a growing pause for as long as it fails on an outage."""
    delay = first_delay
    while True:
        try:
            return start()
        except Exception as exc:
            if classify(exc) != DEPENDENCY:
                raise
            log.warning("%s unreachable at start, trying again in %.1f s: %s",
                        dependency_of(exc, default="database"), delay, str(exc).splitlines()[0][:200])
        sleep(delay)
        delay = min(max_delay, delay * 2)
