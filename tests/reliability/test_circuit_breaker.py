import threading

import pytest

from framepress.service.failure.breaker import CLOSED, HALF_OPEN, OPEN, Breakers, CircuitBreaker

from fakeclock import FakeClock


def test_opens_after_threshold_and_probes_closed():
    clock, changes = FakeClock(), []
    up = {"ok": False}

    def probe():
        if not up["ok"]:
            raise ConnectionRefusedError("still down")

    b = CircuitBreaker("s3", probe, failure_threshold=3, probe_interval=2, clock=clock,
                       on_change=lambda br, old, new: changes.append((old, new)))
    b.record_failure("refused")
    b.record_failure("refused")
    assert b.state == CLOSED
    b.record_failure("refused")
    assert b.state == OPEN and b.is_open and b.last_error == "refused"

    assert not b.probe_due() and b.maybe_probe() is False   # not yet due: no probe
    clock.advance(2)
    assert b.probe_due()
    assert b.maybe_probe() is False                           # probe fails: open again
    assert b.state == OPEN and b.seconds_until_probe() == pytest.approx(4)   # backed off
    clock.advance(4)
    up["ok"] = True
    assert b.maybe_probe() is True and b.state == CLOSED and b.consecutive_failures == 0
    assert changes == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, OPEN), (OPEN, HALF_OPEN),
                       (HALF_OPEN, CLOSED)]


def test_success_resets_the_count():
    b = CircuitBreaker("db", failure_threshold=2, clock=FakeClock())
    b.record_failure()
    b.record_success()
    b.record_failure()
    assert b.state == CLOSED


def test_probe_interval_is_capped():
    clock = FakeClock()
    b = CircuitBreaker("s3", lambda: 1 / 0, failure_threshold=1, probe_interval=1,
                       max_probe_interval=5, clock=clock)
    b.record_failure("down")
    for _ in range(6):
        clock.advance(b.seconds_until_probe())
        b.maybe_probe()
    assert b.seconds_until_probe() == 5


def test_only_one_thread_probes_at_a_time():
    clock = FakeClock()
    entered, release, calls = threading.Event(), threading.Event(), []

    def slow_probe():
        calls.append(1)
        entered.set()
        release.wait(5)

    b = CircuitBreaker("db", slow_probe, failure_threshold=1, probe_interval=1, clock=clock)
    b.record_failure()
    clock.advance(1)
    t = threading.Thread(target=b.maybe_probe)
    t.start()
    assert entered.wait(5)
    assert b.state == HALF_OPEN and b.maybe_probe() is False   # second caller does not probe
    release.set()
    t.join(5)
    assert calls == [1] and b.state == CLOSED


def test_breakers_pause_while_any_open():
    clock, events = FakeClock(), []
    s3 = CircuitBreaker("s3", lambda: None, failure_threshold=1, probe_interval=1, clock=clock)
    db = CircuitBreaker("database", lambda: None, failure_threshold=1, probe_interval=1,
                        clock=clock)
    group = Breakers([s3, db])
    group.add_listener(lambda br, old, new: events.append((br.name, new)))
    assert not group.any_open()
    s3.record_failure()
    assert group.any_open() and group.open_names() == ["s3"]
    assert group.probe_all() is False          # not due yet
    clock.advance(1)
    assert group.probe_all() is True
    assert events == [("s3", OPEN), ("s3", HALF_OPEN), ("s3", CLOSED)]
    assert group["database"] is db and group.get("nope") is None
