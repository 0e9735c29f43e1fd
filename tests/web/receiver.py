"""A webhook receiver on loopback that verifies every signature with the `standardwebhooks`
package (an implementation independent of framepress's) and drops duplicates by `webhook-id`,
as the spec asks of receivers. It can answer with an error, be stopped and started again on the
same port, or hold a request open (to kill the sender mid-delivery)."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class Receiver:
    def __init__(self, secret: str, *, path: str = "/hooks/fp?token=t0k") -> None:
        self.verifier = Webhook(secret)
        self.path = path
        self.arrivals: list[dict] = []        # every POST, duplicates included
        self.events: dict[str, dict] = {}     # by webhook-id: what the receiver acted on
        self.rejected: list[dict] = []        # bad signatures
        self.gets = 0
        self.answer: Callable[[dict], int] = lambda arrival: 204
        self.hold: Optional[threading.Event] = None   # set: requests wait for its release
        self.arrived = threading.Event()
        self.lock = threading.Lock()
        self.server: Optional[ThreadingHTTPServer] = None
        self.port = 0
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                arrival = {"id": headers.get("webhook-id"), "at": time.monotonic(),
                           "timestamp": headers.get("webhook-timestamp"), "body": body}
                try:
                    payload = receiver.verifier.verify(body, headers)
                except WebhookVerificationError as exc:
                    with receiver.lock:
                        receiver.rejected.append({**arrival, "why": str(exc)})
                    self._answer(400)
                    return
                arrival.update(type=payload["type"], task_id=payload["data"]["id"],
                               payload=payload)
                with receiver.lock:
                    receiver.arrivals.append(arrival)
                    receiver.events.setdefault(arrival["id"], arrival)
                receiver.arrived.set()
                if receiver.hold is not None:
                    receiver.hold.wait(60)
                self._answer(receiver.answer(arrival))

            def do_GET(self) -> None:     # a GET is no webhook; answered OK all the same
                with receiver.lock:
                    receiver.gets += 1
                self._answer(200)

            def _answer(self, code: int) -> None:
                try:
                    self.send_response(code)
                    if 300 <= code < 400:
                        self.send_header("Location", receiver.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:               # the sender is gone (killed mid-request)
                    pass

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Down: the port refuses connections until `start()`."""
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def received(self) -> set[tuple[str, str]]:
        """(type, task id) of every distinct event the receiver acted on."""
        with self.lock:
            return {(a["type"], a["task_id"]) for a in self.events.values()}

    def ids_seen(self) -> list[str]:
        with self.lock:
            return [a["id"] for a in self.arrivals]


def body_of(arrival: dict) -> dict:
    return json.loads(arrival["body"])
