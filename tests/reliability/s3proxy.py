"""A fault-injecting HTTP proxy in front of the moto S3 server, on loopback.

- `down()`: stop listening and cut open connections, so clients get "connection refused" (an S3
  outage); `up()` listens again on the same port.
- `fail_gets_containing`: GETs whose path contains this string get a 409 OperationAborted, an
  S3 error that is transient ("try again") and that botocore itself does not retry.
- `slow_down = True`: every request gets 503 SlowDown (S3 overloaded), until set back.
- `fail_gets_where(path, headers)`: GETs for which it says True get the same 409.
- `got_bytes[path]`: the body bytes GETs of each object path have received through it.
"""
from __future__ import annotations

import http.client
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional

from support.services import free_port

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te",
               "trailer", "upgrade"}

OPERATION_ABORTED = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>OperationAborted</Code>'
                     b'<Message>A conflicting conditional operation is currently in progress '
                     b'against this resource. Please try again.</Message></Error>')


SLOW_DOWN = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
             b'<Message>Please reduce your request rate.</Message></Error>')


class S3FaultProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.fail_gets_containing: Optional[str] = None
        self.failed_gets = 0
        self.fail_gets_where: Optional[Callable[[str, Any], bool]] = None
        self.slow_down = False
        self.slowed_down = 0            # requests answered 503
        self.got_bytes: Counter[str] = Counter()  # GET body bytes by object path
        self._server: Optional[ThreadingHTTPServer] = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.up()

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                with proxy._lock:
                    proxy._conns.add(self.connection)

            def finish(self):
                with proxy._lock:
                    proxy._conns.discard(self.connection)
                super().finish()

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _error(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _forward(self):
                body = self._body()
                if proxy.slow_down:
                    proxy.slowed_down += 1
                    self._error(503, SLOW_DOWN)
                    return
                pattern = proxy.fail_gets_containing
                where = proxy.fail_gets_where
                if self.command == "GET" and ((pattern and pattern in self.path)
                                              or (where and where(self.path, self.headers))):
                    proxy.failed_gets += 1
                    self._error(409, OPERATION_ABORTED)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    headers["Content-Length"] = str(len(body))
                conn = http.client.HTTPConnection("127.0.0.1", proxy.target_port, timeout=30)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    if self.command == "GET" and resp.status in (200, 206):
                        with proxy._lock:
                            proxy.got_bytes[self.path.split("?", 1)[0]] += len(data)
                    self.send_response(resp.status, resp.reason)
                    head = self.command == "HEAD"   # HEAD keeps the object's Content-Length
                    for k, v in resp.getheaders():
                        if k.lower() not in HOP_HEADERS and (head or k.lower() != "content-length"):
                            self.send_header(k, v)
                    if not head:
                        self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

            def log_message(self, *args):
                pass

        return Handler

    def up(self) -> None:
        if self._server is not None:
            return
        server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True, name="s3proxy").start()
        self._server = server

    def down(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:          # kept-alive client connections die too, as in a real outage
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.down()
