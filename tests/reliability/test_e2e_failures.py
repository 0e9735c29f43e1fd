"""Failure handling end to end: real RabbitMQ and Postgres, moto S3 over HTTP behind a
fault-injecting proxy, workers as threads or `framepress worker` processes."""
from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import datetime

import pika
import pytest


from relsvc import (AMQP_URL, BUCKET, SLOW_LADDER, TINY_LADDER, cli, kinds, wait_for, wait_status,
                    worker_thread)
from test_escalation import Hook

SECRET = "whsec_" + "c2lnbmluZy1rZXktb2YtdGhlLXRlc3Rz"   # base64 of a 24-byte test key


def _escalations(prefix: str) -> list[dict]:
    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        ch = conn.channel()
        out = []
        while True:
            method, _props, body = ch.basic_get(f"{prefix}framepress.escalations", auto_ack=True)
            if method is None:
                return out
            out.append(json.loads(body))
    finally:
        conn.close()


def _at(event: dict) -> float:
    return datetime.fromisoformat(event["at"]).timestamp()


@pytest.mark.timeout(90)
def test_corrupt_source_escalates_after_one_attempt(service, client, sources):
    hook = Hook()
    try:
        with worker_thread(replace(service["settings"], escalation_webhook=hook.url,
                                   webhook_secret=SECRET)):
            tid = client.submit(sources["corrupt"], ladder=TINY_LADDER)
            st = wait_status(client, tid, timeout=60)
            wait_for(lambda: hook.bodies, 10, "the webhook")
    finally:
        hook.close()
    assert st["status"] == "escalated" and st["attempts"] == 1
    assert "InputError" in st["last_error"]
    assert kinds(st) == ["taken", "details_loaded", "pulled", "error", "escalated"]
    err = st["events"][3]
    assert err["stage"] == "transcode" and err["attempt"] == 1 and "InputError" in err["message"]
    notices = _escalations(service["prefix"])
    assert len(notices) == 1
    n = notices[0]
    assert n["task_id"] == tid and n["stage"] == "transcode" and n["attempts"] == 1
    assert "InputError" in n["error"] and n["kind"] == "permanent" and n["at"]
    # The escalation webhook is a subscription of the signed webhooks (tests/web has the rest).
    body = hook.bodies[0][1]
    assert body["type"] == "task.escalated" and body["data"]["id"] == tid
    assert body["data"]["status"] == "escalated"
    assert hook.headers[0]["webhook-signature"].startswith("v1,")


@pytest.mark.timeout(120)
def test_transient_failure_every_time_escalates_after_max_attempts(service, client, sources):
    proxy = service["proxy"]
    proxy.fail_gets_containing = "always-aborted"
    try:
        with worker_thread(service["settings"]):
            tid = client.submit(sources["flaky"], ladder=TINY_LADDER)
            st = wait_status(client, tid, timeout=90)
    finally:
        proxy.fail_gets_containing = None
    assert st["status"] == "escalated" and st["attempts"] == 3, st["last_error"]
    assert kinds(st) == ["taken", "details_loaded", "error", "retry_scheduled",
                         "taken", "details_loaded", "error", "retry_scheduled",
                         "taken", "details_loaded", "error", "escalated"]
    errors = [e for e in st["events"] if e["kind"] == "error"]
    assert [e["attempt"] for e in errors] == [1, 2, 3]
    assert all(e["stage"] == "pull" and "OperationAborted" in e["message"] for e in errors)
    # Backoff 0.5 s then 1 s (initial 0.5, factor 2, no jitter), held by the delay queues.
    sched = [e for e in st["events"] if e["kind"] == "retry_scheduled"]
    taken = [e for e in st["events"] if e["kind"] == "taken"]
    delays = [e["data"]["delay_s"] for e in sched]
    assert delays == [0.5, 1.0]
    # Both times are the database's, and no take may start before its retry is due: each gap
    # is at least its delay, however loaded the machine. How late a retry starts depends on
    # the load, so the upper bound only catches a backoff far off its schedule.
    gaps = [_at(taken[i + 1]) - _at(sched[i]) for i in range(2)]
    assert all(gap >= delay - 0.001 for gap, delay in zip(gaps, delays)), (gaps, delays)
    assert all(gap - delay < 20 for gap, delay in zip(gaps, delays)), (gaps, delays)
    notice = _escalations(service["prefix"])
    assert notice and notice[0]["kind"] == "exhausted" and notice[0]["attempts"] == 3


@pytest.mark.timeout(150)
def test_admin_retry_resolve_and_cancel(service, client, sources):
    env = service["env"]
    with worker_thread(service["settings"]):
        tid = client.submit(sources["corrupt"], ladder=TINY_LADDER)
        assert wait_status(client, tid)["status"] == "escalated"

        listed = cli(env, "tasks", "list", "--status", "escalated", "--json")
        assert [t["id"] for t in listed] == [tid]
        out = cli(env, "tasks", "retry", tid, "--reset-attempts", "--json")
        assert out["previous_status"] == "escalated" and out["attempts"] == 0
        wait_for(lambda: kinds(client.status(tid)).count("escalated") == 2, 60, "a 2nd escalation")
        st = client.status(tid)
        assert st["attempts"] == 1 and "resumed" in kinds(st)

        out = cli(env, "tasks", "resolve", tid, "--note", "source is broken upstream", "--json")
        assert out["status"] == "failed"
        st = client.status(tid)
        assert st["status"] == "failed" and st["events"][-1]["kind"] == "resolved"
        assert st["events"][-1]["message"] == "source is broken upstream"

        # Cancel while the engine runs: it stops within a heartbeat and uploads nothing.
        long_id = client.submit(sources["long"], ladder=SLOW_LADDER)
        wait_for(lambda: (client.status(long_id)["progress"] or 0) > 0.05, 60, "progress")
        t0 = time.monotonic()
        out = cli(env, "tasks", "cancel", long_id, "--json")
        assert out["previous_status"] == "running" and out["running_on"]
        # The worker is free again quickly: a tiny task submitted now succeeds.
        tiny = client.submit(sources["tiny"], ladder=TINY_LADDER)
        assert wait_status(client, tiny, timeout=60)["status"] == "succeeded"
        freed_after = time.monotonic() - t0
    st = client.status(long_id)
    assert st["status"] == "cancelled"
    assert not {"transcoded", "uploaded", "succeeded", "escalated"} & set(kinds(st)), kinds(st)
    prefix = f"out/{service['prefix']}/{long_id}/"
    assert "Contents" not in service["s3"].list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    assert freed_after < 30, freed_after


@pytest.mark.timeout(120)
def test_a_task_past_its_time_limit_is_cancelled_and_retried(service, client, sources):
    with worker_thread(replace(service["settings"], max_task_seconds=2.0)):
        tid = client.submit(sources["long"], ladder=SLOW_LADDER)
        st = wait_status(client, tid, timeout=100)
    assert st["status"] == "escalated" and st["attempts"] == 3
    errors = [e for e in st["events"] if e["kind"] == "error"]
    assert len(errors) == 3 and all("exceeded the 2 s limit" in e["message"] for e in errors)
    assert all(e["data"]["type"] == "TaskTimeout" for e in errors)
    assert kinds(st).count("retry_scheduled") == 2
