import threading

from framepress.scaling.health import Health

from fakeclock import FakeClock


def test_healthz_needs_a_live_heartbeat():
    clock = FakeClock()
    h = Health(heartbeat_interval=5, stuck_after=60, clock=clock)
    assert h.healthz() == (False, "heartbeat has not started")
    h.beat()
    assert h.healthz() == (True, "ok")
    clock.advance(16)
    ok, why = h.healthz()
    assert not ok and "no heartbeat" in why


def test_dead_heartbeat_thread_is_unhealthy():
    h = Health()
    t = threading.Thread(target=h.beat)
    t.start()
    t.join()
    assert h.healthz() == (False, "heartbeat thread died")


def test_engine_stuck_only_while_the_engine_runs():
    clock = FakeClock()
    h = Health(heartbeat_interval=5, stuck_after=30, clock=clock)
    h.beat()
    clock.advance(100)
    h.beat()
    assert h.healthz()[0]                 # idle for long: fine
    h.task_started("t1")
    h.engine_started()
    clock.advance(20)
    h.progress()
    clock.advance(25)
    h.beat()
    assert h.healthz()[0] and not h.engine_stuck()
    clock.advance(10)
    h.beat()
    ok, why = h.healthz()
    assert not ok and "engine stuck" in why and "t1" in why
    assert h.engine_stuck() and h.stalled_for() == 35
    h.task_finished()
    assert h.healthz()[0] and h.stalled_for() == 0


def test_long_pulls_and_uploads_are_not_an_engine_stuck():
    clock = FakeClock()
    h = Health(heartbeat_interval=5, stuck_after=30, clock=clock)
    h.task_started("t1")
    for _ in range(20):                   # a 200 s download: no engine progress, not stuck
        clock.advance(10)
        h.beat()
        assert h.healthz() == (True, "ok") and h.stalled_for() == 0
    h.engine_started()
    clock.advance(20)
    h.progress()
    h.engine_finished()
    for _ in range(20):                   # a 200 s upload; a late progress call changes nothing
        clock.advance(10)
        h.progress()
        h.beat()
        assert h.healthz() == (True, "ok") and not h.engine_stuck()


def test_readyz():
    h = Health()
    assert h.readyz() == (False, "not connected to the broker")
    h.set_connected(True)
    assert h.readyz() == (True, "ok")
    h.set_paused("s3 breaker open")
    assert h.readyz() == (False, "paused: s3 breaker open")
    h.set_paused("")
    h.set_draining()
    assert h.readyz() == (False, "draining") and h.draining
    snap = h.snapshot()
    assert snap["ready"] is False and snap["ready_reason"] == "draining"


def test_readyz_follows_a_live_connection_check():
    h = Health()
    state = {"up": True}
    h.connected_fn = lambda: state["up"]
    assert h.readyz() == (True, "ok")
    state["up"] = False
    assert h.readyz() == (False, "not connected to the broker")
    h.connected_fn = lambda: 1 / 0
    assert h.readyz()[0] is False


def test_a_real_task_times_only_its_engine_stage(service, client, sources):
    """The worker tells health when the engine stage starts and ends: after `pulled`, before
    `transcoded`; pull and upload stay outside the "engine stuck" window."""
    from relsvc import TINY_LADDER, wait_status, worker_thread
    calls = []
    with worker_thread(service["settings"]) as w:
        health, forward = w.health, w.heartbeat.engine_stage

        def record(running):
            last = client.status(health.current_task)["events"][-1]["kind"]
            forward(running)
            calls.append((running, last, health.engine_running))
        w.heartbeat.engine_stage = record
        tid = client.submit(sources["tiny"], ladder=TINY_LADDER)
        st = wait_status(client, tid, timeout=90)
    assert st["status"] == "succeeded", st["last_error"]
    assert calls == [(True, "pulled", True), (False, "pulled", False)], calls
    assert health.stalled_for() == 0 and not health.engine_running
