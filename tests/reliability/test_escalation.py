"""Escalation notices: the message and the webhook POST (a real http.server on loopback, including
one that fails). Their delivery from the outbox is test_escalation_delivery's."""
import json
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from framepress.service.failure.escalation import build_message, post_webhook

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
