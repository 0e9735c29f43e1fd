"""The console on loopback over embedded mode (SQLite, the local queue, local files): a real
uvicorn server, requests over real HTTP, the database read back to check what changed."""
from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlencode, urlsplit

import pytest

from framepress.config import Settings
from framepress.service.db import connect
from framepress.service.tasks import EventKind, TaskStore

TOKEN = "console-test-token-6f1d"
SECRET = "whsec_" + "c2lnbmluZy1rZXktb2YtdGhlLXRlc3Rz"   # base64 of a 24-byte test key
LADDER = {"name": "default", "rungs": []}


def embedded_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Embedded mode under tmp_path, nothing taken from this process's environment."""
    values = dict(data_dir=str(tmp_path / "data"), metrics_port=0, admin_token=TOKEN,
                  webhook_secret=SECRET, heartbeat_seconds=1.0)
    values.update(overrides)
    return Settings.from_env({}, **values)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


class Http:
    """Requests to the console that follow no redirect (the tests look at each answer)."""

    def __init__(self, base: str) -> None:
        self.base = base
        parts = urlsplit(base)
        self.host, self.port = parts.hostname, parts.port

    def request(self, method: str, path: str, *, token: Optional[str] = None,
                cookie: Optional[str] = None, json_body: Any = None,
                form: Optional[dict[str, str]] = None,
                headers: Optional[dict[str, str]] = None) -> Answer:
        h = dict(headers or {})
        body = None
        if token:
            h["Authorization"] = f"Bearer {token}"
        if cookie:
            h["Cookie"] = f"framepress_session={cookie}"
        if json_body is not None:
            body = json.dumps(json_body).encode()
            h.setdefault("Content-Type", "application/json")
        if form is not None:
            body = urlencode(form).encode()
            h.setdefault("Content-Type", "application/x-www-form-urlencoded")
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> Answer:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Answer:
        return self.request("POST", path, **kw)

    def login(self) -> str:
        """A session cookie from the login form."""
        answer = self.post("/login", form={"token": TOKEN, "next": "/"})
        assert answer.status == 303, answer.text
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        return cookie.split(";", 1)[0].split("=", 1)[1]


@dataclass
class RunningConsole:
    settings: Settings
    server: Any
    http: Http

    @property
    def db(self):
        return self.server.console.db

    @property
    def url(self) -> str:
        return self.http.base


def start_console(settings: Settings, **kwargs: Any) -> RunningConsole:
    from framepress.web.server import Server
    server = Server(settings, host="127.0.0.1", port=0, **kwargs).start()
    return RunningConsole(settings, server, Http(f"http://127.0.0.1:{server.port}"))


@pytest.fixture
def settings(tmp_path) -> Settings:
    return embedded_settings(tmp_path)


@pytest.fixture
def console(settings):
    running = start_console(settings, dispatch_webhooks=False)
    try:
        yield running
    finally:
        running.server.stop()
        running.db.dispose()


def escalated_task(db, *, source: str = "file:///in/clip.mp4", output: str = "file:///out",
                   store: Optional[TaskStore] = None) -> str:
    """A task whose only attempt failed for good: escalated, as a worker leaves it."""
    store = store or TaskStore(db, lease_seconds=30)
    tid = store.create(source, output, LADDER, max_attempts=1)
    lease = store.take(tid, "w-test", {"hostname": "h", "pid": 1}).lease
    store.fail(lease, status="escalated",
               error_event={"stage": "transcode", "message": "InputError: corrupt"},
               follow_up={"kind": EventKind.ESCALATED, "message": "permanent error",
                          "data": {"escalation": "permanent"}})
    return tid


def task_row(db, task_id: str) -> dict:
    return TaskStore(db).status(task_id)


__all__ = ["TOKEN", "SECRET", "embedded_settings", "start_console", "escalated_task", "task_row",
           "Http", "connect"]
