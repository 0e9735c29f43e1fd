"""Signed webhooks on task events, delivered to a real loopback receiver that verifies every
signature: every event arrives, a retried one carries the same id, a receiver that was down gets
everything once it is back, a dispatcher that gives up says so, and a worker killed with -9
mid-delivery loses nothing."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import threading
import time

import pytest
from sqlalchemy import select, update

from framepress.service import admin
from framepress.service.db import WebhookAttempt, WebhookDelivery, connect
from framepress.service.tasks import TaskStore
from framepress.webhooks import Subscriptions
from framepress.webhooks.dispatcher import Dispatcher, list_deliveries, start_thread
from framepress.webhooks.signing import secret_key

from support.services import FRAMEPRESS, embedded_env, run_framepress, wait_for

from .conftest import LADDER, SECRET, embedded_settings, escalated_task
from .receiver import Receiver

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def receiver():
    r = Receiver(SECRET)
    yield r
    if r.hold is not None:
        r.hold.set()
    r.stop()


def _settle_four_ways(db, subs: Subscriptions, *, webhook: str | None = None) -> dict[str, str]:
    """One task of each announced status, as the workers and operators leave them."""
    store = TaskStore(db, lease_seconds=30)
    store.webhooks = subs
    options = {"webhook": webhook} if webhook else None
    ok = store.create("file:///in/a.mp4", "file:///out", LADDER, options=options)
    store.succeed(store.take(ok, "w1", {}).lease, [], {"note": "done"})
    escalated = escalated_task(db, store=store)
    failed = escalated_task(db, store=store)
    admin.resolve(db, failed, "not worth it", webhooks=subs)
    cancelled = store.create("file:///in/b.mp4", "file:///out", LADDER)
    admin.cancel(db, cancelled, webhooks=subs)
    return {"succeeded": ok, "escalated": escalated, "failed": failed, "cancelled": cancelled}


def _drain(dispatcher: Dispatcher, db, timeout: float = 20) -> None:
    def done() -> bool:
        dispatcher.run_once()
        return not list_deliveries(db, status="pending", attempts=False)
    wait_for(done, timeout, "the webhooks to be delivered")


def _due_now(db) -> None:
    """Skip the backoff instead of sleeping through it."""
    with db.session() as s:
        s.execute(update(WebhookDelivery).values(next_attempt_at=WebhookDelivery.created_at))


def test_every_event_arrives_signed_once_per_subscriber(tmp_path, receiver):
    task_hook = Receiver(SECRET, path="/per-task")
    escalation_hook = Receiver(SECRET, path="/escalations")
    settings = embedded_settings(tmp_path, webhook_url=receiver.url,
                                 escalation_webhook=escalation_hook.url)
    db = connect(settings)
    try:
        ids = _settle_four_ways(db, Subscriptions.from_settings(settings), webhook=task_hook.url)
        _drain(Dispatcher.from_settings(db, settings), db)
    finally:
        task_hook.stop()
        escalation_hook.stop()
    assert receiver.received() == {
        ("task.succeeded", ids["succeeded"]), ("task.escalated", ids["escalated"]),
        ("task.escalated", ids["failed"]), ("task.failed", ids["failed"]),
        ("task.cancelled", ids["cancelled"])}
    assert len(receiver.arrivals) == 5 and not receiver.rejected
    assert task_hook.received() == {("task.succeeded", ids["succeeded"])}
    assert escalation_hook.received() == {("task.escalated", ids["escalated"]),
                                          ("task.escalated", ids["failed"])}
    # The body is the Standard Webhooks form around the `framepress status --json` shape.
    for a in receiver.arrivals:
        body = a["payload"]
        assert set(body) == {"type", "timestamp", "data"}
        assert body["data"]["status"] == body["type"].split(".", 1)[1]
        assert a["id"].startswith("msg_") and abs(int(a["timestamp"]) - time.time()) < 60
    failed = next(a for a in receiver.arrivals if a["type"] == "task.failed")["payload"]["data"]
    assert failed["events"][-1]["kind"] == "resolved"
    # Every attempt is recorded; the listing shows no URL's path (it may hold a token).
    listed = list_deliveries(db)
    assert len(listed) == 8 and {d["status"] for d in listed} == {"delivered"}
    assert all(len(d["tries"]) == 1 and d["tries"][0]["status_code"] == 204 for d in listed)
    assert all("t0k" not in (d["url"] or "") for d in listed)


def test_a_refused_event_is_sent_again_with_the_same_id(tmp_path, receiver):
    settings = embedded_settings(tmp_path, webhook_url=receiver.url)
    db = connect(settings)
    seen: set[str] = set()

    def first_time_fails(arrival: dict) -> int:
        if arrival["id"] in seen:
            return 204
        seen.add(arrival["id"])
        return 500
    receiver.answer = first_time_fails
    ids = _settle_four_ways(db, Subscriptions.from_settings(settings))
    dispatcher = Dispatcher.from_settings(db, settings)
    assert dispatcher.run_once().failed == 5
    _due_now(db)
    assert dispatcher.run_once().delivered == 5
    arrivals = receiver.ids_seen()
    assert len(arrivals) == 10 and len(set(arrivals)) == 5
    assert all(arrivals.count(i) == 2 for i in arrivals)
    # Same id, same bytes: the receiver's dedup keeps one of each.
    by_id: dict[str, set[bytes]] = {}
    for a in receiver.arrivals:
        by_id.setdefault(a["id"], set()).add(a["body"])
    assert all(len(bodies) == 1 for bodies in by_id.values())
    assert len(receiver.received()) == 5 and ids["succeeded"] in {t for _, t in receiver.received()}
    tries = [d["tries"] for d in list_deliveries(db)]
    assert all([t["status_code"] for t in ts] == [500, 204] for ts in tries)


def test_a_receiver_down_for_a_while_gets_everything_when_back(tmp_path, receiver):
    settings = embedded_settings(tmp_path, webhook_url=receiver.url, webhook_retry_max=1.0,
                                 webhook_timeout=2.0)
    db = connect(settings)
    receiver.stop()
    ids = _settle_four_ways(db, Subscriptions.from_settings(settings))
    stop = threading.Event()
    thread = start_thread(Dispatcher.from_settings(db, settings), stop, interval=0.2)
    try:
        wait_for(lambda: all(d["attempts"] >= 3 for d in
                             list_deliveries(db, attempts=False)), 30, "three refused tries each")
        assert not receiver.arrivals
        receiver.start()                        # back, on the same port
        wait_for(lambda: not list_deliveries(db, status="pending", attempts=False), 30,
                 "delivery after the receiver came back")
    finally:
        stop.set()
        thread.join(10)
    assert len(receiver.received()) == 5 and len(receiver.arrivals) == 5
    assert {t for _, t in receiver.received()} == set(ids.values())
    for d in list_deliveries(db):
        assert all(t["status_code"] is None and "refused" in t["error"].lower()
                   for t in d["tries"][:-1])
        assert d["tries"][-1]["status_code"] == 204


def test_a_delivery_is_given_up_after_its_attempts_and_the_log_says_so(tmp_path, receiver,
                                                                       caplog):
    settings = embedded_settings(tmp_path, webhook_url=receiver.url, webhook_max_attempts=2)
    db = connect(settings)
    receiver.answer = lambda arrival: 503
    escalated_task(db, store=_store(db, settings))
    dispatcher = Dispatcher.from_settings(db, settings)
    caplog.set_level(logging.WARNING, "framepress.webhooks")
    assert dispatcher.run_once().failed == 1
    _due_now(db)
    assert dispatcher.run_once().given_up == 1
    [d] = list_deliveries(db)
    assert d["status"] == "failed" and d["attempts"] == 2 and d["last_status_code"] == 503
    assert "given up after 2 attempts" in caplog.text and "t0k" not in caplog.text
    _due_now(db)
    assert dispatcher.run_once().failed == 0 and len(receiver.arrivals) == 2


def test_a_redirect_is_not_a_delivery(tmp_path, receiver):
    """Following it would turn the POST into a GET that may well answer 200."""
    settings = embedded_settings(tmp_path, webhook_url=receiver.url)
    db = connect(settings)
    receiver.answer = lambda arrival: 302
    escalated_task(db, store=_store(db, settings))
    assert Dispatcher.from_settings(db, settings).run_once().failed == 1
    [d] = list_deliveries(db)
    assert d["status"] == "pending" and d["last_status_code"] == 302 and len(receiver.arrivals) == 1
    assert receiver.gets == 0


def test_a_wrong_secret_is_refused_by_the_receiver(tmp_path, receiver):
    settings = embedded_settings(tmp_path, webhook_url=receiver.url)
    db = connect(settings)
    escalated_task(db, store=_store(db, settings))
    other = "whsec_" + "YW5vdGhlci1rZXktZW50aXJlbHktMTIz"
    assert Dispatcher(db, other).run_once().failed == 1
    assert len(receiver.rejected) == 1 and not receiver.arrivals
    assert list_deliveries(db)[0]["last_status_code"] == 400


def test_secrets_that_are_not_whsec_base64_are_refused(tmp_path):
    from framepress.service.errors import ConfigError
    for bad in ("plain-secret", "whsec_***not base64***", "whsec_c2hvcnQ="):
        with pytest.raises(ConfigError):
            secret_key(bad)
    db = connect(embedded_settings(tmp_path))
    assert Dispatcher.from_settings(db, embedded_settings(tmp_path, webhook_secret=None)) is None


def _store(db, settings) -> TaskStore:
    store = TaskStore(db, lease_seconds=30)
    store.webhooks = Subscriptions.from_settings(settings)
    return store


def test_a_worker_killed_mid_delivery_loses_nothing(tmp_path, receiver):
    """`framepress worker` processes deliver; the first is killed with -9 while the receiver holds
    its POST open. The delivery stays claimed, its attempt without an outcome; when the claim
    lapses the second worker sends it again under the same id, and every event arrives."""
    env = embedded_env(tmp_path, FRAMEPRESS_METRICS_PORT="0", FRAMEPRESS_WEBHOOK_URL=receiver.url,
                       FRAMEPRESS_WEBHOOK_SECRET=SECRET, FRAMEPRESS_WEBHOOK_TIMEOUT="3",
                       FRAMEPRESS_HEARTBEAT_SECONDS="1")
    settings = embedded_settings(tmp_path, webhook_url=receiver.url)
    db = connect(settings)
    ids = _settle_four_ways(db, Subscriptions.from_settings(settings))
    receiver.hold = threading.Event()
    first = subprocess.Popen([FRAMEPRESS, "worker"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    second = None
    try:
        assert receiver.arrived.wait(30), "the first worker posted nothing"
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        held = receiver.ids_seen()[0]
        receiver.hold.set()
        with db.session() as s:
            d = s.get(WebhookDelivery, held)
            assert d.status == "pending" and d.claimed_until is not None
            [attempt] = s.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == held))
            assert attempt.finished_at is None and attempt.status_code is None
        second = subprocess.Popen([FRAMEPRESS, "worker"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        wait_for(lambda: not list_deliveries(db, status="pending", attempts=False), 45,
                 "the second worker to deliver everything")
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(30)
    assert len(receiver.received()) == 5
    assert {t for _, t in receiver.received()} == set(ids.values())
    assert receiver.ids_seen().count(held) == 2          # sent again, under the same id
    tries = next(d for d in list_deliveries(db) if d["id"] == held)["tries"]
    assert [t["status_code"] for t in tries] == [None, 204]
    assert tries[0]["dispatcher"] != tries[1]["dispatcher"]
    listed = json.loads(run_framepress(env, "webhooks", "list", "--json").stdout)
    assert len(listed) == 5 and {d["status"] for d in listed} == {"delivered"}
    assert "t0k" not in run_framepress(env, "webhooks", "list").stdout
