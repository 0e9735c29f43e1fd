import os
import signal
import time

from framepress.service.failure.drain import DRAINING, FORCED, RUNNING, STOPPED, Drainer


class ManualTimers:
    """Timer factory that fires only when told to."""

    def __init__(self):
        self.pending = []

    def __call__(self, seconds, fn):
        timer = _Timer(seconds, fn)
        self.pending.append(timer)
        return timer

    def fire(self):
        for t in list(self.pending):
            if not t.cancelled:
                t.fn()


class _Timer:
    def __init__(self, seconds, fn):
        self.seconds, self.fn, self.cancelled = seconds, fn, False

    def cancel(self):
        self.cancelled = True


def _drainer(**kw):
    calls = []
    d = Drainer(on_drain=lambda: calls.append("drain"), on_force=lambda: calls.append("force"),
                **kw)
    return d, calls


def test_idle_worker_stops_at_once():
    d, calls = _drainer()
    assert d.request_stop() == STOPPED
    assert calls == ["drain"] and d.exit_code == 0 and d.stopped.is_set()


def test_busy_worker_finishes_its_task_then_exits_0():
    timers = ManualTimers()
    d, calls = _drainer(drain_timeout=30, timer=timers)
    d.task_started()
    assert d.state == RUNNING and not d.draining
    assert d.request_stop() == DRAINING and d.draining
    assert calls == ["drain"] and timers.pending[0].seconds == 30
    d.task_finished()
    assert d.state == STOPPED and d.exit_code == 0 and calls == ["drain"] and d.stopped.is_set()
    assert timers.pending[0].cancelled          # the drain timer no longer matters


def test_second_sigterm_forces():
    d, calls = _drainer()
    d.task_started()
    d.request_stop()
    assert d.request_stop() == FORCED and calls == ["drain", "force"]
    d.task_finished()                           # the cancelled task returned its message
    assert d.state == STOPPED and d.exit_code == 1 and calls == ["drain", "force"]


def test_drain_timeout_forces():
    timers = ManualTimers()
    d, calls = _drainer(drain_timeout=5, timer=timers)
    d.task_started()
    d.request_stop()
    timers.fire()
    assert d.state == FORCED and calls == ["drain", "force"]
    d.task_finished()
    assert d.exit_code == 1


def test_real_timer_and_callback_errors_do_not_break_it():
    d = Drainer(drain_timeout=0.1, on_drain=lambda: 1 / 0)
    d.task_started()
    d.request_stop()
    time.sleep(0.4)
    assert d.state == FORCED


def test_installed_on_real_signals():
    d, calls = _drainer()
    d.install([signal.SIGTERM])
    try:
        d.task_started()
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)                        # the handler runs between bytecodes
        assert d.state == DRAINING
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        assert d.state == FORCED
    finally:
        d.uninstall()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert Drainer().state == RUNNING
