"""Escalation notices: the message, and a loopback webhook receiver for the tests of the
escalation subscription. The message's delivery from the outbox is test_escalation_delivery's;
the webhooks' own tests are in tests/web."""
import json
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from framepress.service.failure.escalation import build_message


class Hook:
    """A loopback webhook that fails the first `failures` requests with `status`."""

    def __init__(self, failures=0, status=500):
        self.failures, self.status, self.bodies, self.headers = failures, status, [], []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.bodies.append((self.headers["Content-Type"], json.loads(body)))
                hook.headers.append({k.lower(): v for k, v in self.headers.items()})
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
