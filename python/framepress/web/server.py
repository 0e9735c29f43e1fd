"""`framepress web`: the console on one port, over the workers' database and broker, with a
webhook dispatcher beside it (when a signing secret is set)."""
from __future__ import annotations

import logging
import signal
import socket
import threading
from typing import Callable, Optional

from framepress.config import Settings
from framepress.service.errors import ConfigError
from framepress.web.auth import Auth
from framepress.web.context import Console
from framepress.web.queries import DepthSampler
from framepress.webhooks import Subscriptions

log = logging.getLogger("framepress.web")


def make_console(settings: Settings, *, db=None, broker=None, sample_every: float = 10.0) -> Console:
    from framepress.service.broker import open_broker
    from framepress.service.db import connect
    db = db or connect(settings)
    broker = broker or open_broker(settings, db)
    console = Console(settings=settings, db=db, broker=broker,
                      auth=Auth(settings.admin_token, open_reads=bool(settings.web_open_reads)),
                      webhooks=Subscriptions.from_settings(settings))
    console.sampler = DepthSampler(lambda: (console.queue_depth(0) or {}).get("messages"),
                                   interval=sample_every)
    return console


class Server:
    """uvicorn on a thread of its own; `serve()` keeps the main thread for the signals."""

    def __init__(self, settings: Settings, *, host: str = "0.0.0.0", port: Optional[int] = None,
                 console: Optional[Console] = None, dispatch_webhooks: bool = True) -> None:
        import uvicorn
        from framepress.web.app import build
        self.console = console or make_console(settings)
        if not self.console.auth.configured:
            log.warning("FRAMEPRESS_ADMIN_TOKEN is not set: the console refuses every action%s",
                        "" if settings.web_open_reads else " and every read")
        self.host, self._port = host, settings.web_port if port is None else port
        config = uvicorn.Config(build(self.console), host=host, port=self._port,
                                log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self._socket: Optional[socket.socket] = None
        self._stop = threading.Event()
        self._hooks: Optional[threading.Thread] = None
        if dispatch_webhooks:
            from framepress.webhooks.dispatcher import Dispatcher, start_thread
            dispatcher = Dispatcher.from_settings(self.console.db, settings)
            if dispatcher:
                self._hooks = start_thread(dispatcher, self._stop)
        self._thread: Optional[threading.Thread] = None

    @property
    def port(self) -> int:
        """The bound port (the one asked for, or the one the system chose for port 0)."""
        return self._socket.getsockname()[1] if self._socket else self._port

    def serve(self, started: Optional[Callable[[], None]] = None) -> None:
        """Until SIGINT or SIGTERM, then a clean stop (exit 0, as Kubernetes expects).
        `started()` runs once the port is bound."""
        stopping = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stopping.set())
        self.start()
        if started:
            started()
        stopping.wait()
        self.stop()

    def start(self, timeout: float = 15.0) -> "Server":
        """Bind here (a port in use is a clear error, not a dead thread), then serve on a thread."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self._port))
        except OSError as exc:
            sock.close()
            raise ConfigError(f"the console cannot listen on {self.host}:{self._port}: "
                              f"{exc.strerror}") from None
        sock.listen(128)
        self._socket = sock
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]},
                                        name="framepress-web", daemon=True)
        self._thread.start()
        waited = threading.Event()
        for _ in range(int(timeout / 0.05)):
            if self.server.started:
                return self
            if not self._thread.is_alive():
                break
            waited.wait(0.05)
        raise ConfigError("the console did not start")

    def stop(self) -> None:
        self._stop.set()
        self.server.should_exit = True
        if self._thread:
            self._thread.join(timeout=10)
        if self._socket:
            self._socket.close()


__all__ = ["Server", "make_console"]
