"""What a delivery may do with a task, against a real Postgres: take over a dead holder but never
a live one, wait out a retry's backoff, escalate an exhausted task with the lease fenced."""
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from framepress.service.db import Task, TaskEvent, Worker
from framepress.service.errors import StaleLease
from framepress.service.tasks import TaskStore

LADDER = {"name": "default", "rungs": []}


def _register(db, worker_id, silent_for=0.0, state="busy"):
    """A workers row whose last heartbeat was `silent_for` seconds ago, by the database's clock."""
    now = db.now()
    with db.session() as s:
        s.add(Worker(id=worker_id, hostname="h", pid=1, version="0", hardware={}, state=state,
                     started_at=now, heartbeat_at=now - timedelta(seconds=silent_for)))


def _kinds(db, task_id):
    with db.session() as s:
        return [e.kind for e in s.scalars(select(TaskEvent).where(TaskEvent.task_id == task_id)
                                          .order_by(TaskEvent.id))]


def test_a_live_holder_is_never_displaced_even_with_its_lease_run_out(pg_database):
    db = pg_database
    store = TaskStore(db, lease_seconds=30, takeover_seconds=12)
    tid = store.create("s3://b/k.mp4", "s3://b/out", LADDER)
    _register(db, "holder", silent_for=3)
    store.take(tid, "holder", {})
    with db.session() as s:     # the lease ran out, but the holder still beats
        s.execute(update(Task).values(lease_expires_at=db.now() - timedelta(seconds=60)))
    busy = store.take(tid, "other", {})
    assert busy.outcome == "busy" and busy.holder == "holder"
    assert abs((db.now() - busy.holder_heartbeat_at).total_seconds() - 3) < 2


def test_a_holder_silent_past_the_takeover_time_is_taken_over_and_fenced(pg_database):
    db = pg_database
    store = TaskStore(db, lease_seconds=60, takeover_seconds=12)
    tid = store.create("s3://b/k.mp4", "s3://b/out", LADDER)
    _register(db, "dead", silent_for=13)
    old = store.take(tid, "dead", {}).lease
    taken = store.take(tid, "other", {"pid": 2}, reachable_since=db.now() - timedelta(hours=1))
    assert taken.outcome == "taken" and taken.took_over_from == "dead"
    assert taken.lease.token == old.token + 1 and taken.lease.attempt == 2
    with pytest.raises(StaleLease):
        store.succeed(old, [], {})


def test_silence_during_a_database_outage_is_not_death(pg_database):
    """The taker reaches the database only since 5 s ago (it just came back): a holder silent
    for 60 s may have been cut off by the same outage; it is not taken over."""
    db = pg_database
    store = TaskStore(db, lease_seconds=60, takeover_seconds=12)
    tid = store.create("s3://b/k.mp4", "s3://b/out", LADDER)
    _register(db, "holder", silent_for=60)
    store.take(tid, "holder", {})
    assert store.take(tid, "other", {}, reachable_since=db.now() - timedelta(seconds=5)).outcome == "busy"
    # Once the taker has reached the database for longer than the takeover time, silence counts.
    taken = store.take(tid, "other", {}, reachable_since=db.now() - timedelta(seconds=13))
    assert taken.outcome == "taken"


@pytest.mark.parametrize("state", ["lost", "stopped"])
def test_a_holder_marked_lost_or_stopped_is_taken_over(pg_database, state):
    db = pg_database
    store = TaskStore(db, lease_seconds=60, takeover_seconds=12)
    tid = store.create("s3://b/k.mp4", "s3://b/out", LADDER)
    _register(db, "gone", silent_for=0, state=state)
    store.take(tid, "gone", {})
    assert store.take(tid, "other", {}).outcome == "taken"


def test_a_retry_is_not_taken_before_it_is_due(pg_database):
    db = pg_database
    store = TaskStore(db, lease_seconds=60)
    tid = store.create("s3://b/k.mp4", "s3://b/out", LADDER, priority=3)
    lease = store.take(tid, "w1", {}).lease
    store.fail(lease, status="retry_wait", error_event={"message": "x"}, retry_in_s=30)
    with db.session() as s:
        due = s.get(Task, tid).next_attempt_at
    assert 28 < (due - db.now()).total_seconds() <= 30       # from the database's clock
    early = store.take(tid, "w2", {})
    assert early.outcome == "not_due" and 28 < early.due_in_s <= 30
    assert early.spec.priority == 3
    assert _kinds(db, tid)[-1] == "duplicate_delivery"
    with db.session() as s:
        assert s.get(Task, tid).status == "retry_wait" and s.get(Task, tid).attempts == 1
        s.execute(update(Task).values(next_attempt_at=db.now() - timedelta(seconds=1)))
    assert store.take(tid, "w2", {}).outcome == "taken"


def test_escalation_at_take_bumps_the_token(pg_database):
    """A partitioned holder of the last attempt cannot turn `escalated` into `succeeded`."""
    db = pg_database
    store = TaskStore(db, lease_seconds=60, takeover_seconds=12)
    tid = store.create("s3://b/k.mp4", "s3://b/out", LADDER, max_attempts=1)
    _register(db, "partitioned", silent_for=30)
    old = store.take(tid, "partitioned", {}).lease
    out = store.take(tid, "other", {})
    assert out.outcome == "exhausted" and out.took_over_from == "partitioned"
    with db.session() as s:
        t = s.get(Task, tid)
        assert t.status == "escalated" and t.lease_token == old.token + 1
    for write in (lambda: store.succeed(old, [], {}), lambda: store.progress(old, 0.9),
                  lambda: store.fail(old, status="retry_wait", error_event={"message": "x"})):
        with pytest.raises(StaleLease):
            write()
    assert _kinds(db, tid) == ["taken", "escalated"]
    assert store.take(tid, "third", {}).outcome == "settled"
