"""Admin actions and the reaper against a real Postgres."""
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from framepress.service import admin, outbox
from framepress.service.db import Task, TaskEvent, Worker, utcnow
from framepress.service.failure.reaper import REAPER_LOCK_ID, Leadership, Reaper
from framepress.service.errors import StaleLease
from framepress.service.tasks import TaskStore
from support.services import RecordingBroker, wait_for

LADDER = {"name": "default", "rungs": []}


FakeBroker = RecordingBroker


def _kinds(db, task_id):
    with db.session() as s:
        return [e.kind for e in s.scalars(select(TaskEvent).where(TaskEvent.task_id == task_id)
                                          .order_by(TaskEvent.id))]


def _task(db, task_id):
    with db.session() as s:
        return s.get(Task, task_id)


def _escalate(store, task_id, worker="w1"):
    lease = store.take(task_id, worker, {}).lease
    store.fail(lease, status="escalated", error_event={"stage": "transcode",
                                                      "message": "InputError: corrupt"},
               follow_up={"kind": "escalated", "message": "permanent"})
    return lease


def _reaper(db, **kw):
    """A task store, the list of task ids the reaper publishes, and the reaper."""
    broker = RecordingBroker()
    reaper = Reaper(db, broker, **kw)
    return TaskStore(db, lease_seconds=30), broker.published, reaper


def _register(db, worker_id, heartbeat_age=0.0, state="busy", task_id=None):
    with db.session() as s:
        s.add(Worker(id=worker_id, hostname="h", pid=1, version="0", hardware={}, state=state,
                     started_at=utcnow(), heartbeat_at=utcnow() - timedelta(seconds=heartbeat_age),
                     current_task_id=task_id))


def test_retry_resolve_cancel(pg_database):
    db, broker = pg_database, FakeBroker()
    store = TaskStore(db, lease_seconds=30)
    tid = store.create("s3://b/k.mp4", "s3://b/out", LADDER, max_attempts=1)
    _escalate(store, tid)

    with pytest.raises(admin.AdminError):
        admin.resolve(db, tid, "  ")
    out = admin.retry(db, broker, tid)
    assert out["status"] == "queued" and out["max_attempts"] == 2 and broker.published == [tid]
    assert store.take(tid, "w2", {}).outcome == "taken"          # one more attempt granted
    with pytest.raises(admin.AdminError):
        admin.retry(db, broker, tid)                              # running: not retryable

    out = admin.cancel(db, tid, reason="customer withdrew it")
    assert out["previous_status"] == "running" and out["running_on"] == "w2"
    t = _task(db, tid)
    assert t.status == "cancelled"
    assert store.take(tid, "w3", {}).outcome == "settled"       # a redelivery does nothing

    out = admin.retry(db, broker, tid, reset_attempts=True)
    assert out["attempts"] == 0 and _task(db, tid).status == "queued"
    lease = store.take(tid, "w4", {}).lease
    store.fail(lease, status="escalated", error_event={"message": "x"},
               follow_up={"kind": "escalated"})
    out = admin.resolve(db, tid, "source re-uploaded under a new task")
    assert out["status"] == "failed"
    assert _kinds(db, tid) == ["taken", "error", "escalated", "resumed", "taken", "cancelled",
                               "duplicate_delivery", "resumed", "taken", "error", "escalated",
                               "resolved"]
    with pytest.raises(admin.TaskNotFound):
        admin.cancel(db, "no-such-task")


def test_cancel_fences_the_running_worker(pg_database):
    store = TaskStore(pg_database, lease_seconds=30)
    tid = store.create("s3://b/k.mp4", "s3://b/out", LADDER)
    lease = store.take(tid, "w1", {}).lease
    admin.cancel(pg_database, tid)
    with pytest.raises(StaleLease):
        store.renew(lease)
    with pytest.raises(StaleLease):
        store.succeed(lease, [], {})
    assert _task(pg_database, tid).status == "cancelled"


def test_reaper_requeues_a_lost_workers_task(pg_database):
    db = pg_database
    store, published, reaper = _reaper(db, worker_timeout=10)
    tid = store.create("s3://b/k.mp4", "s3://b/out", LADDER)
    lease = store.take(tid, "dead", {}).lease
    _register(db, "dead", heartbeat_age=60, task_id=tid)
    _register(db, "alive", heartbeat_age=1, state="idle")

    lost_before = REGISTRY.get_sample_value("framepress_workers_lost_total") or 0
    report = reaper.reap_once()
    assert report.lost_workers == ["dead"] and report.requeued == [tid] and published == [tid]
    assert REGISTRY.get_sample_value("framepress_workers_lost_total") == lost_before + 1
    t = _task(db, tid)
    assert t.status == "queued" and t.attempts == 1                # the lost attempt counted
    with db.session() as s:
        states = dict(s.execute(select(Worker.id, Worker.state)).all())
    assert states == {"dead": "lost", "alive": "idle"}
    assert _kinds(db, tid) == ["taken", "worker_lost", "incomplete", "requeued"]
    with pytest.raises(StaleLease):                               # SIGCONT: fenced off
        store.check(lease)
    assert not reaper.reap_once()                                  # nothing more to do


def test_reaper_skips_a_task_the_broker_already_redelivered(pg_database):
    db = pg_database
    store, published, reaper = _reaper(db, worker_timeout=10)
    tid = store.create("s3://b/k.mp4", "s3://b/out", LADDER)
    store.take(tid, "dead", {})
    _register(db, "dead", heartbeat_age=60, task_id=tid)
    # The broker redelivered when the connection dropped; another worker took over.
    with db.session() as s:
        s.execute(update(Task).where(Task.id == tid).values(lease_expires_at=utcnow()))
    assert store.take(tid, "other", {}).outcome == "taken"
    report = reaper.reap_once()
    assert report.lost_workers == ["dead"] and report.requeued == [] and published == []
    assert _task(db, tid).status == "running"


def test_reaper_requeues_expired_leases_and_publishes_once_the_broker_answers(pg_database):
    db = pg_database
    store = TaskStore(db, lease_seconds=30)
    broker = RecordingBroker(fail_first=1)
    reaper = Reaper(db, broker, worker_timeout=10, lease_grace=5)
    tid = store.create("s3://b/k.mp4", "s3://b/out", LADDER)
    store.take(tid, "never-registered", {})
    with db.session() as s:
        s.execute(update(Task).where(Task.id == tid)
                  .values(lease_expires_at=utcnow() - timedelta(seconds=60)))
    first = reaper.reap_once()
    # Requeued with its message staged in one transaction; the publish failed: it waits.
    assert first.incomplete == [tid] and first.requeued == [tid] and broker.published == []
    assert _task(db, tid).status == "queued"
    assert not reaper.reap_once()                                  # requeued once, not again
    assert outbox.Relay(db, broker).flush(tid).sent == 1 and broker.published == [tid]


def test_one_leader_per_round(pg_database):
    a, b = Leadership(pg_database), Leadership(pg_database)
    assert a.acquire()
    assert not b.acquire()
    a.release()
    assert b.acquire()
    b.release()


def test_a_stalled_leader_loses_the_lock(pg_database):
    """Postgres ends the idle session of a leader that stopped (SIGSTOP), and its lock."""
    import time
    a = Leadership(pg_database, stall_timeout=1)
    b = Leadership(pg_database)
    assert a.acquire()                  # ... and the process stops mid-round
    time.sleep(1.5)
    assert b.acquire()                  # Postgres ended the stalled transaction
    b.release()
    a.release()


def test_reaper_republishes_an_overdue_retry_once_per_period(pg_database):
    db = pg_database
    store, published, reaper = _reaper(db, stale_retry_after=60)
    tid = store.create("s3://b/k.mp4", "s3://b/out", LADDER)
    lease = store.take(tid, "w1", {}).lease
    store.fail(lease, status="retry_wait", error_event={"message": "x"}, retry_in_s=-120)
    assert reaper.reap_once().requeued == [tid] and published == [tid]
    assert reaper.reap_once().requeued == [] and published == [tid]      # not every round
    assert _kinds(db, tid)[-1] == "requeued"
    assert store.take(tid, "w2", {}).outcome == "taken"


def test_reaper_exports_the_age_of_the_oldest_queued_task(pg_database):
    from datetime import timedelta
    from framepress.service.db import Task, utcnow
    store = TaskStore(pg_database, lease_seconds=30)
    old, new = store.create("s3://b/a.mp4", "s3://b/out", LADDER), store.create("s3://b/b.mp4", "s3://b/out", LADDER)
    with pg_database.session() as s:
        s.get(Task, old).created_at = utcnow() - timedelta(seconds=120)
    Reaper(pg_database, RecordingBroker(), worker_timeout=10).reap_once()
    assert 119 <= REGISTRY.get_sample_value("framepress_queue_oldest_task_age_seconds") < 150
    with pg_database.session() as s:
        s.get(Task, old).status = "succeeded"
        s.get(Task, new).status = "succeeded"
    Reaper(pg_database, RecordingBroker(), worker_timeout=10).reap_once()
    assert REGISTRY.get_sample_value("framepress_queue_oldest_task_age_seconds") == 0


def test_a_round_writes_nothing_once_its_lock_is_gone(pg_database):
    """The leader's session ends mid-round (here: terminated between two of its transactions):
    the lock goes with it, another process leads, and the old round's later writes all fail."""
    from sqlalchemy import create_engine, text
    db = pg_database
    a, b = Leadership(db), Leadership(db)
    assert a.acquire()
    pid = a.connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    a.connection.commit()
    killer = create_engine(db.url.replace("postgresql://", "postgresql+psycopg://"))
    took_over = []

    class KillingBroker(RecordingBroker):
        def publish_json(self, queue, payload, priority=0, delay_s=0.0):
            # Runs between the round's first requeue and its next write.
            with killer.connect() as c:
                c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            took_over.append(wait_for(b.acquire, 20, "the lock to be free"))  # the session ends
            super().publish_json(queue, payload, priority, delay_s)

    store = TaskStore(db, lease_seconds=30)
    reaper = Reaper(db, KillingBroker(), worker_timeout=10)
    first, second = (store.create("s3://b/k.mp4", "s3://b/out", LADDER) for _ in range(2))
    for tid, worker in ((first, "dead"), (second, "dead2")):
        store.take(tid, worker, {})
        _register(db, worker, heartbeat_age=60, task_id=tid)
    with pytest.raises(Exception):
        reaper.reap_once(conn=a.connection)
    assert took_over == [True]                      # the lock went with the session
    requeued = [t for t in (first, second) if _task(db, t).status == "queued"]
    assert len(requeued) == 1                       # the write after the lock went never landed
    (left,) = {first, second} - set(requeued)
    assert _task(db, left).status == "running"
    assert not a.acquire()                          # and it stands by now
    report = Reaper(db, RecordingBroker(), worker_timeout=10, lease_grace=0).reap_once(
        conn=b.connection)
    assert report.requeued == [left] and _task(db, left).status == "queued"
    a.release()
    b.release()
    killer.dispose()


def test_the_lock_is_checked_each_round_and_survives_between_rounds(pg_database):
    a, b = Leadership(pg_database, stall_timeout=30), Leadership(pg_database)
    assert a.acquire()
    conn = a.connection
    for _ in range(3):
        assert a.acquire() and a.connection is conn     # still held: the same session
        assert not b.acquire()
    conn.exec_driver_sql(f"SELECT pg_advisory_unlock({REAPER_LOCK_ID})")   # lost somehow
    conn.commit()
    assert b.acquire()                                  # another process leads at once
    assert not a.acquire() and a.connection is None     # and the check says so
    b.release()
    assert a.acquire()
    a.release()


def test_silence_while_the_reaper_could_not_see_the_database_is_not_loss(pg_database):
    """A gap in the reaper's own view of the database (an outage, a partition) restarts every
    worker's clock: nobody is lost until they stayed silent a full timeout after it."""
    import time
    db = pg_database
    store, published, reaper = _reaper(db, worker_timeout=3, gap_seconds=2.0)
    tid = store.create("s3://b/k.mp4", "s3://b/out", LADDER)
    store.take(tid, "w", {})
    _register(db, "w", heartbeat_age=0, task_id=tid)
    reaper.observe()
    time.sleep(4.5)                       # the reaper saw nothing for longer than gap_seconds
    report = reaper.reap_once()
    assert report.lost_workers == [] and _task(db, tid).status == "running"
    seen_again = time.monotonic()

    def watch(seconds):
        while time.monotonic() - seen_again < seconds:
            time.sleep(0.3)
            reaper.observe()
    watch(1.5)
    assert reaper.reap_once().lost_workers == []          # silent 1.5 s since it looked again
    watch(3.8)
    report = reaper.reap_once()                            # silent 3.8 s while seen: lost
    assert report.lost_workers == ["w"] and report.requeued == [tid]
