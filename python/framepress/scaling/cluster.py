"""An autoscaled pool of `framepress worker` processes on one machine.

Every tick: collect exited workers, sample utilization, ask `autoscale.decide`, act, log the
decision. Scaling down never kills work: the chosen worker (the least busy one) gets SIGTERM,
which makes a worker stop consuming, finish its current task, ack and exit 0. Only a worker still
draining after `drain_timeout` gets a second SIGTERM (cancel and requeue) and, later, SIGKILL.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import psutil

from framepress.scaling.autoscale import Decision, Sample, Thresholds, decide

log = logging.getLogger(__name__)

# `framepress worker` run by this interpreter, so the pool works from a venv that is not on PATH.
DEFAULT_WORKER_COMMAND = (sys.executable, "-c", "from framepress.cli import run; run()", "worker")
KILL_GRACE_S = 30.0  # after the second SIGTERM, before SIGKILL
CRASH_WINDOW_S = 10.0  # a worker dying this soon after its start counts toward a crash loop


@dataclass
class Worker:
    slot: int
    proc: subprocess.Popen
    started_at: float
    drain_started_at: float | None = None
    cancel_sent_at: float | None = None
    killed: bool = False
    cpu_seconds: float = 0.0  # of its process tree at the last tick
    cpu_rate: float = 0.0  # cores used since the last tick: how busy it is

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def draining(self) -> bool:
        return self.drain_started_at is not None


def _tree_cpu_seconds(pid: int) -> float:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


@dataclass
class PoolEvent:
    """What the pool did, for callers and tests (the log has the same lines)."""
    at: float
    kind: str  # decision | started | draining | exited | cancel | killed
    detail: dict = field(default_factory=dict)


class Pool:
    def __init__(self, minimum: int, maximum: int, sampler: Callable[[], float], *,
                 thresholds: Thresholds = Thresholds(), command: Sequence[str] = DEFAULT_WORKER_COMMAND,
                 initial: int | None = None, interval_s: float = 5.0, drain_timeout_s: float = 3600.0,
                 env: Mapping[str, str] | None = None, metrics_port_base: int | None = None,
                 clock: Callable[[], float] = time.monotonic):
        if not 0 <= minimum <= maximum or maximum < 1:
            raise ValueError(f"need 0 <= min <= max and max >= 1, got {minimum}..{maximum}")
        self.minimum, self.maximum = minimum, maximum
        self.thresholds = thresholds
        self.command = list(command)
        self.initial = minimum if initial is None else max(minimum, min(maximum, initial))
        self.interval_s = interval_s
        self.drain_timeout_s = drain_timeout_s
        self.env = dict(os.environ if env is None else env)
        self.metrics_port_base = metrics_port_base
        self._sampler = sampler
        self._clock = clock
        self.workers: list[Worker] = []
        # Enough history for one window plus a couple of ticks of slack.
        self.samples: deque[Sample] = deque(maxlen=max(8, int(thresholds.window_s / interval_s) + 4))
        self.last_scale_at: float | None = None
        self.events: list[PoolEvent] = []
        self._replacements_due = 0  # workers that exited unasked and are to be restarted
        self._replace_after = 0.0
        self._crash_delay = 0.0
        self._lock = threading.Lock()
        self._last_tick = clock()

    # ---- queries ------------------------------------------------------------------------------

    @property
    def active(self) -> list[Worker]:
        return [w for w in self.workers if not w.draining]

    @property
    def draining(self) -> list[Worker]:
        return [w for w in self.workers if w.draining]

    def _record(self, kind: str, message: str, *args: object, level: int = logging.INFO, **detail: object) -> None:
        self.events.append(PoolEvent(self._clock(), kind, detail))
        log.log(level, message, *args)

    # ---- process control ----------------------------------------------------------------------

    def _free_slot(self) -> int:
        used = {w.slot for w in self.workers}
        return next(i for i in range(len(used) + 1) if i not in used)

    def _start_worker(self) -> Worker:
        slot = self._free_slot()
        env = dict(self.env)
        if self.metrics_port_base:  # one metrics port per worker; 9100 twice would not bind
            env["FRAMEPRESS_METRICS_PORT"] = str(self.metrics_port_base + slot)
        # A session of its own: a Ctrl-C at the terminal reaches the pool, which drains workers in
        # order, instead of interrupting every task at once.
        proc = subprocess.Popen(self.command, env=env, start_new_session=True)
        worker = Worker(slot, proc, self._clock())
        worker.cpu_seconds = _tree_cpu_seconds(proc.pid)
        self.workers.append(worker)
        self._record("started", "worker started pid=%d slot=%d", proc.pid, slot, pid=proc.pid, slot=slot)
        return worker

    def _drain(self, worker: Worker, why: str) -> None:
        worker.drain_started_at = self._clock()
        self._signal(worker, signal.SIGTERM)
        self._record("draining", "worker draining pid=%d (%s; busy %.2f cores)", worker.pid, why,
                     worker.cpu_rate, pid=worker.pid, reason=why)

    def _signal(self, worker: Worker, sig: int) -> None:
        try:
            worker.proc.send_signal(sig)
        except ProcessLookupError:
            pass

    def _least_busy(self) -> Worker:
        # Idle workers first (a drained idle worker exits at once); among equals the youngest,
        # whose warm caches are worth least.
        return min(self.active, key=lambda w: (round(w.cpu_rate, 1), -w.started_at))

    # ---- one tick -----------------------------------------------------------------------------

    def _collect_exited(self, now: float) -> None:
        for w in list(self.workers):
            rc = w.proc.poll()
            if rc is None:
                continue
            self.workers.remove(w)
            if w.draining:
                self._record("exited", "worker pid=%d drained and exited rc=%d after %.1fs", w.pid, rc,
                             now - w.drain_started_at, pid=w.pid, rc=rc, drained=True)
                continue
            # Not asked to stop: replace it, backing off if it keeps dying young.
            young = now - w.started_at < CRASH_WINDOW_S
            self._crash_delay = min(60.0, max(1.0, self._crash_delay * 2)) if young else 0.0
            self._replace_after = now + self._crash_delay
            self._record("exited", "worker pid=%d exited on its own rc=%d; replacing in %.0fs", w.pid, rc,
                         self._crash_delay, level=logging.WARNING, pid=w.pid, rc=rc, drained=False)
            self._replacements_due += 1

    def _update_busy(self, now: float, elapsed: float) -> None:
        for w in self.workers:
            cpu = _tree_cpu_seconds(w.pid)
            w.cpu_rate = max(0.0, cpu - w.cpu_seconds) / elapsed if elapsed > 0 else 0.0
            w.cpu_seconds = cpu

    def _enforce_drain_timeout(self, now: float) -> None:
        for w in self.draining:
            if w.cancel_sent_at is None and now - w.drain_started_at > self.drain_timeout_s:
                w.cancel_sent_at = now
                self._signal(w, signal.SIGTERM)  # the second one: cancel, return the message
                self._record("cancel", "worker pid=%d still draining after %.0fs: cancelling its task",
                             w.pid, now - w.drain_started_at, level=logging.WARNING, pid=w.pid)
            elif w.cancel_sent_at is not None and not w.killed and now - w.cancel_sent_at > KILL_GRACE_S:
                w.killed = True
                self._signal(w, signal.SIGKILL)
                self._record("killed", "worker pid=%d ignored the cancel: killed", w.pid,
                             level=logging.ERROR, pid=w.pid)

    def start(self) -> None:
        with self._lock:
            for _ in range(self.initial):
                self._start_worker()
            self._last_tick = self._clock()

    def tick(self) -> Decision:
        with self._lock:
            now = self._clock()
            self._update_busy(now, now - self._last_tick)
            self._last_tick = now
            self._collect_exited(now)
            self._enforce_drain_timeout(now)
            while self._replacements_due and now >= self._replace_after and len(self.active) < self.maximum:
                self._replacements_due -= 1
                self._start_worker()

            self.samples.append((now, self._sampler()))
            # Replacements waiting out a crash backoff count as workers, or the minimum would
            # restart a crash-looping worker at once.
            current = len(self.active) + self._replacements_due
            decision = decide(current, self.minimum, self.maximum, list(self.samples),
                              self.last_scale_at, now, self.thresholds)
            self._record("decision", "decision %s", decision.describe(current), action=decision.action,
                         current=current, target=decision.target, reason=decision.reason,
                         utilization=decision.utilization)
            if decision.action == "up":
                for _ in range(decision.target - current):
                    self._start_worker()
                self.last_scale_at = now
            elif decision.action == "down":
                for _ in range(current - decision.target):
                    if self._replacements_due:  # cheaper than draining a live worker
                        self._replacements_due -= 1
                    else:
                        self._drain(self._least_busy(), decision.reason)
                self.last_scale_at = now
            return decision

    def run(self, stop: threading.Event) -> None:
        """Scale until `stop` is set, then drain every worker and return."""
        self.start()
        while not stop.wait(self.interval_s):
            self.tick()
        self.shutdown()

    def shutdown(self, timeout_s: float | None = None, force: Callable[[], bool] | None = None) -> None:
        """Drain all workers; after `timeout_s` (default: the drain timeout) or when `force` is set,
        cancel their tasks, and kill what is left after the grace. `force()` true: cancel now."""
        timeout_s = self.drain_timeout_s if timeout_s is None else timeout_s
        with self._lock:
            for w in self.active:
                self._drain(w, "pool stopping")
        deadline = self._clock() + timeout_s
        cancelled_at: float | None = None
        while True:
            with self._lock:
                self._collect_exited(self._clock())
                self._replacements_due = 0
                if not self.workers:
                    return
                now = self._clock()
                if cancelled_at is None and (now >= deadline or (force is not None and force())):
                    cancelled_at = now
                    for w in self.workers:
                        w.cancel_sent_at = now
                        self._signal(w, signal.SIGTERM)
                    self._record("cancel", "pool stopping now: cancelling %d tasks", len(self.workers),
                                 level=logging.WARNING)
                elif cancelled_at is not None and now - cancelled_at > KILL_GRACE_S:
                    for w in self.workers:
                        self._signal(w, signal.SIGKILL)
                    self._record("killed", "killed %d workers that ignored the cancel", len(self.workers),
                                 level=logging.ERROR)
                    cancelled_at = float("inf")
            time.sleep(0.2)
