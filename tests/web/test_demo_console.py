"""`framepress demo --console`: after the demo, the console keeps running on the demo's data and
prints its URL; the admin token it made is in a file only its owner reads, never printed."""
from __future__ import annotations

import re
import signal
import stat
import subprocess
import threading

import pytest

from support.services import FRAMEPRESS, embedded_env

from .conftest import Http

pytestmark = pytest.mark.timeout(120)


def test_demo_leaves_the_console_running_on_its_data(tmp_path):
    env = embedded_env(tmp_path, FRAMEPRESS_METRICS_PORT="0", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([FRAMEPRESS, "demo", "--seconds", "1", "--size", "320x180",
                             "--console", "--console-port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if "console: http://" in line:
                found.set()
    threading.Thread(target=read, daemon=True).start()
    try:
        assert found.wait(90), "no console URL in the demo's output:\n" + "".join(lines)
        url = re.search(r"console: (http://127\.0\.0\.1:\d+)/", "".join(lines)).group(1)
        token_file = tmp_path / "data" / "console-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        http = Http(url)
        [task] = http.get("/api/tasks", token=token).json()
        assert task["status"] == "succeeded"
        assert http.get("/api/tasks").status == 401
        assert http.get(f"/tasks/{task['id']}", token=token).status == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert token not in "".join(lines) + proc.stderr.read()


def test_framepress_web_serves_on_the_port_it_is_given(tmp_path):
    from support.services import free_port, wait_for
    ports = free_port(), free_port()
    env = embedded_env(tmp_path, FRAMEPRESS_ADMIN_TOKEN="t-123", FRAMEPRESS_WEB_PORT=str(ports[0]))
    for args, port in (([], ports[0]), (["--port", str(ports[1])], ports[1])):
        proc = subprocess.Popen([FRAMEPRESS, "web", "--host", "127.0.0.1", *args], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            http = Http(f"http://127.0.0.1:{port}")

            def up() -> bool:
                try:
                    return http.get("/healthz").status == 200
                except OSError:
                    return False
            wait_for(up, 30, f"framepress web on port {port}")
            assert http.get("/api/tasks", token="t-123").json() == []
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert "t-123" not in proc.stdout.read() + proc.stderr.read()
