"""Graceful drain on SIGTERM, as a small state machine.

    running --SIGTERM--> draining --task done / idle--> stopped (exit 0)
                            |
                            +--second SIGTERM or drain timeout--> forced (cancel the engine,
                                                                   return the message, exit 1)

Kubernetes sends SIGTERM, waits terminationGracePeriodSeconds, then SIGKILL: the drain timeout
should be a little shorter than the grace period so the forced path still runs (the message goes
back to the queue at once instead of waiting for the broker to notice the dead connection).

This module only decides; the worker wires the callbacks. Signal handlers run on the main thread
between bytecodes, possibly inside pika's I/O loop, so callbacks must only set flags or schedule
work (``connection.add_callback_threadsafe``), never call into pika directly.
"""
from __future__ import annotations

import logging
import signal
import threading
from typing import Callable, Iterable, Optional

log = logging.getLogger(__name__)

RUNNING = "running"
DRAINING = "draining"
FORCED = "forced"
STOPPED = "stopped"

EXIT_OK = 0
EXIT_FORCED = 1

Callback = Optional[Callable[[], None]]
TimerFactory = Callable[[float, Callable[[], None]], object]


def _thread_timer(seconds: float, fn: Callable[[], None]) -> threading.Timer:
    t = threading.Timer(seconds, fn)
    t.daemon = True
    t.start()
    return t


class Drainer:
    """Decides what each SIGTERM means. Callbacks:

    on_drain   stop consuming, readiness off (the current task keeps running)
    on_force   cancel the engine (CancelToken.cancel()) and return the message for redelivery

    Once everything is done, ``state`` is ``stopped`` and ``exit_code`` says how it ended.
    """

    def __init__(self, *, drain_timeout: float = 0.0, on_drain: Callback = None,
                 on_force: Callback = None,
                 timer: TimerFactory = _thread_timer) -> None:
        self.drain_timeout = drain_timeout
        self.on_drain = on_drain
        self.on_force = on_force
        self._timer_factory = timer
        self._timer: object = None
        self._lock = threading.RLock()
        self.state = RUNNING
        self.exit_code: Optional[int] = None
        self.stopped = threading.Event()
        self._busy = False
        self._previous: dict[int, object] = {}

    # --- inputs ------------------------------------------------------------------------------
    def request_stop(self, reason: str = "SIGTERM") -> str:
        """One stop request (a signal). Returns the new state."""
        with self._lock:
            if self.state == RUNNING:
                self.state = DRAINING
                log.warning("%s: draining (no new tasks; finishing the current one)", reason)
                self._call(self.on_drain)
                if not self._busy:
                    self._finish(EXIT_OK)
                elif self.drain_timeout > 0:
                    self._timer = self._timer_factory(self.drain_timeout, self._timed_out)
            elif self.state == DRAINING:
                log.warning("%s again: cancelling the current task", reason)
                self._force()
            return self.state

    def task_started(self) -> None:
        with self._lock:
            self._busy = True

    def task_finished(self) -> None:
        """The current task's outcome is recorded and acked (or returned)."""
        with self._lock:
            self._busy = False
            if self.state in (DRAINING, FORCED):
                self._finish(EXIT_OK if self.state == DRAINING else EXIT_FORCED)

    @property
    def draining(self) -> bool:
        return self.state != RUNNING

    # --- internals ---------------------------------------------------------------------------
    def _timed_out(self) -> None:
        with self._lock:
            if self.state == DRAINING:
                log.warning("drain timeout (%.0fs) reached: cancelling the current task",
                            self.drain_timeout)
                self._force()

    def _force(self) -> None:
        self.state = FORCED
        self._cancel_timer()
        self._call(self.on_force)
        if not self._busy:
            self._finish(EXIT_FORCED)

    def _finish(self, code: int) -> None:
        if self.state == STOPPED:
            return
        self._cancel_timer()
        self.state = STOPPED
        self.exit_code = code
        self.stopped.set()

    def _cancel_timer(self) -> None:
        cancel = getattr(self._timer, "cancel", None)
        if cancel:
            cancel()
        self._timer = None

    @staticmethod
    def _call(fn: Callback) -> None:
        if fn is None:
            return
        try:
            fn()
        except Exception:  # a failing callback must not break the state machine
            log.exception("drain callback failed")

    # --- signals -----------------------------------------------------------------------------
    def install(self, signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT)) -> None:
        """Route the signals to ``request_stop`` (call from the main thread)."""
        for sig in signals:
            self._previous[sig] = signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        for sig, prev in self._previous.items():
            signal.signal(sig, prev)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        self.request_stop(signal.Signals(signum).name)
