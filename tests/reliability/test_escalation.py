"""Escalation: the message on framepress.escalations (real RabbitMQ) and the webhook (a real
http.server on loopback, including one that fails)."""
import json
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from framepress import escalation
from framepress.escalation import build_message, escalate, notify_webhook, post_webhook

from support.services import free_port


class Hook:
    """A loopback webhook that fails the first `failures` requests with `status`."""

    def __init__(self, failures=0, status=500):
        self.failures, self.status, self.bodies = failures, status, []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.bodies.append((self.headers["Content-Type"], json.loads(body)))
                code = hook.status if len(hook.bodies) <= hook.failures else 204
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/escalation?token=s3cret"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook_factory():
    hooks = []

    def make(**kw):
        hooks.append(Hook(**kw))
        return hooks[-1]
    yield make
    for h in hooks:
        h.close()


def test_build_message():
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    msg = build_message("abc", "transcode", "InputError: moov atom not found", 1, at=at,
                        kind="permanent", worker_id=None, source_uri="s3://b/k")
    assert msg == {"task_id": "abc", "stage": "transcode", "error": "InputError: moov atom not found",
                   "attempts": 1, "at": "2026-01-02T03:04:05+00:00", "kind": "permanent",
                   "source_uri": "s3://b/k"}
    assert len(build_message("a", None, "x" * 10_000, 5)["error"]) == 4000


def test_webhook_delivers(hook_factory):
    hook = hook_factory()
    msg = build_message("t1", "pull", "boom", 5)
    assert post_webhook(hook.url, msg, sleep=lambda s: None) is True
    assert hook.bodies == [("application/json", msg)]


def test_webhook_retries_5xx_then_succeeds(hook_factory):
    hook = hook_factory(failures=2, status=503)
    sleeps = []
    assert post_webhook(hook.url, {"task_id": "t"}, attempts=3, backoff=0.1, sleep=sleeps.append)
    assert len(hook.bodies) == 3 and sleeps == [0.1, 0.2]


def test_webhook_failure_is_logged_never_raised(hook_factory, caplog):
    hook = hook_factory(failures=99, status=500)
    assert post_webhook(hook.url, {"task_id": "t"}, attempts=3, sleep=lambda s: None) is False
    assert len(hook.bodies) == 3
    assert "gave up" in caplog.text and "s3cret" not in caplog.text   # no token in the logs


def test_webhook_4xx_is_not_retried(hook_factory):
    hook = hook_factory(failures=99, status=400)
    assert post_webhook(hook.url, {"task_id": "t"}, attempts=3, sleep=lambda s: None) is False
    assert len(hook.bodies) == 1


def test_webhook_nobody_listening():
    port = free_port()                          # a port with nothing behind it
    assert post_webhook(f"http://127.0.0.1:{port}/", {"task_id": "t"}, attempts=2,
                        sleep=lambda s: None, timeout=1) is False


def test_notify_webhook_in_background(hook_factory):
    hook = hook_factory()
    t = notify_webhook({"task_id": "bg"}, hook.url)
    t.join(5)
    assert hook.bodies[0][1] == {"task_id": "bg"}
    assert notify_webhook({"task_id": "none"}) is None      # no hook configured


def test_escalate_publishes_counts_and_calls_the_hook(amqp_channel, unique, hook_factory):
    ch = amqp_channel
    queue = f"{unique}.escalations"
    ch.declared.append(queue)
    hook = hook_factory()
    counted = []
    msg = build_message("t-42", "transcode", "InputError: Invalid data found", 1, kind="permanent")
    t = escalate(ch, msg, webhook_url=hook.url, metric=lambda: counted.append(1), queue=queue)
    t.join(5)
    escalation.declare_queue(ch, queue)         # idempotent
    method, props, body = ch.basic_get(queue, auto_ack=True)
    assert method is not None and json.loads(body) == msg
    assert props.content_type == "application/json" and props.delivery_mode == 2
    assert counted == [1] and hook.bodies[0][1] == msg


def test_escalate_survives_a_failing_metric_and_hook(amqp_channel, unique):
    queue = f"{unique}.escalations"
    amqp_channel.declared.append(queue)
    t = escalate(amqp_channel, {"task_id": "x"}, webhook_url="http://127.0.0.1:1/",
                 metric=lambda: 1 / 0, queue=queue)
    t.join(10)
    assert amqp_channel.basic_get(queue, auto_ack=True)[0] is not None
