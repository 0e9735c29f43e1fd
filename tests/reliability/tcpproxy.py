"""A TCP forwarder on loopback whose connections can be cut, to drop a worker's broker or
database connections mid-task without disturbing anyone else using the same server, or paused,
to stand for a network partition (bytes are accepted and go nowhere; nothing is closed)."""
from __future__ import annotations

import re
import socket
import threading


def via_proxy(url: str, port: int) -> str:
    """The same service URL (amqp://, postgresql://), through a proxy's port on loopback."""
    return re.sub(r"@([^:/]+):(\d+)", f"@127.0.0.1:{port}", url, count=1)


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self.cuts = 0
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._closed = False
        self.down = False   # while set, connections are accepted and dropped: the server is "away"
        self._flowing = threading.Event()
        self._flowing.set()
        threading.Thread(target=self._accept, daemon=True, name="tcpproxy").start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.down:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._socks.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self._flowing.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            with self._lock:
                self._socks.discard(src)
                self._socks.discard(dst)

    def cut(self) -> int:
        """Drop every open connection (both ends see a reset); new ones are still accepted."""
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.cuts += 1
        return len(socks) // 2

    def set_down(self, down: bool) -> None:
        """Take the "server" away (every connection cut, new ones dropped) or bring it back."""
        self.down = down
        if down:
            self.cut()
    def pause(self) -> None:
        """A partition: connections stay open (new ones are accepted) but nothing is forwarded."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def close(self) -> None:
        self._flowing.set()
        self._closed = True
        self._listener.close()
        self.cut()
