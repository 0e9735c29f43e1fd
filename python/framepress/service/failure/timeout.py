"""The per-task time limit (FRAMEPRESS_MAX_TASK_SECONDS): the engine is cancelled when it runs
past it, and the attempt fails with `TaskTimeout`."""
from __future__ import annotations

import logging
import threading
from typing import Callable, Optional

from framepress.errors import FramepressError

log = logging.getLogger("framepress.worker")


class TaskTimeout(FramepressError):
    """The task ran past FRAMEPRESS_MAX_TASK_SECONDS and was cancelled. Retried: a busy node may
    be the cause; a task that always overruns escalates when its attempts run out."""

    transient = True


class TaskWatch:
    """Calls `expire()` (which cancels the engine) when a task runs past `limit` seconds."""

    def __init__(self, expire: Callable[[], None], limit: float) -> None:
        self.limit = limit
        self.expired = False
        self._expire_fn = expire
        self._timer: Optional[threading.Timer] = None
        if limit > 0:
            self._timer = threading.Timer(limit, self._expire)
            self._timer.daemon = True
            self._timer.start()

    def _expire(self) -> None:
        self.expired = True
        log.warning("task ran past %.0f s (FRAMEPRESS_MAX_TASK_SECONDS): cancelling", self.limit)
        self._expire_fn()

    def error(self, cause: BaseException) -> TaskTimeout:
        """The error to record instead of the engine's Cancelled."""
        err = TaskTimeout(f"task exceeded the {self.limit:.0f} s limit "
                          f"(FRAMEPRESS_MAX_TASK_SECONDS) and was cancelled", step="timeout")
        err.__cause__ = cause
        return err

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
