"""A RabbitMQ node of a test's own: its own node name, ports, data and log directories and Erlang
cookie, so a test can kill it with -9 and restart it without touching the shared node.

    with PrivateRabbitMQ(tmp_path) as rmq:
        url = rmq.url              # amqp://guest:guest@127.0.0.1:<port>/%2F
        rmq.kill()                 # SIGKILL to the whole node
        rmq.start()                # same data directory: durable queues and messages come back

The node reads none of the machine's RabbitMQ configuration (its own empty config and env files,
no plugins: no management listener to collide with).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Optional

from .services import free_port

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


class PrivateRabbitMQ:
    def __init__(self, base: Path, *, start_timeout: float = 120.0) -> None:
        self.base = Path(base) / f"rabbitmq-{uuid.uuid4().hex[:6]}"
        self.name = f"fptest{uuid.uuid4().hex[:8]}@localhost"
        self.port, self.dist_port = free_port(), free_port()
        self.start_timeout = start_timeout
        self.proc: Optional[subprocess.Popen] = None
        for d in ("mnesia", "log", "home"):
            (self.base / d).mkdir(parents=True, exist_ok=True)
        (self.base / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\nloopback_users.guest = true\n")
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "rabbitmq-env.conf").write_text("")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update(
            HOME=str(self.base / "home"),          # its own Erlang cookie
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.base / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.base / "log"),
            RABBITMQ_CONFIG_FILE=str(self.base / "rabbitmq.conf"),
            RABBITMQ_CONF_ENV_FILE=str(self.base / "rabbitmq-env.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.base / "enabled_plugins"),
            RABBITMQ_ENABLED_PLUGINS="",
            RABBITMQ_PID_FILE=str(self.base / "node.pid"),
            ERL_EPMD_ADDRESS="127.0.0.1",
            ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}",
        )
        return env

    def start(self) -> "PrivateRabbitMQ":
        log = open(self.base / "log" / "console.log", "ab")
        self.proc = subprocess.Popen([SERVER], env=self._env(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"private RabbitMQ exited {self.proc.returncode}: "
                                   f"{self.console()[-2000:]}")
            if self._accepts_amqp():
                return self
            time.sleep(0.5)
        raise RuntimeError(f"private RabbitMQ not up in {self.start_timeout:.0f} s: "
                           f"{self.console()[-2000:]}")

    def _accepts_amqp(self) -> bool:
        import pika
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                pass
            pika.BlockingConnection(pika.URLParameters(self.url + "?connection_attempts=1")).close()
            return True
        except Exception:  # noqa: BLE001  not up yet
            return False

    def kill(self) -> None:
        """SIGKILL to the node's whole process group: no clean shutdown, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def console(self) -> str:
        path = self.base / "log" / "console.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def __enter__(self) -> "PrivateRabbitMQ":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()
