"""The console's JSON API over real HTTP: every endpoint, the credential, CSRF, and that a
refused request changes nothing in the database."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import func, select

from framepress.service.db import Task, TaskEvent
from framepress.service.tasks import TaskStore
from framepress.web.openapi import ENDPOINTS

from .conftest import TOKEN, escalated_task, start_console, embedded_settings, task_row

pytestmark = pytest.mark.timeout(60)


def _counts(db) -> tuple[int, int]:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(Task)), \
            s.scalar(select(func.count()).select_from(TaskEvent))


def _concrete(path: str, task_id: str) -> str:
    return path.replace("{task_id}", task_id).replace("{path}", "hls/master.m3u8")


def test_openapi_describes_every_api_route(console):
    answer = console.http.get("/openapi.json")          # the description is public
    assert answer.status == 200
    spec = answer.json()
    routes = {(r.path.replace("{path:path}", "{path}"), m) for r in
              console.server.server.config.app.routes if getattr(r, "path", "").startswith("/api")
              for m in r.methods - {"HEAD"}}
    described = {(p, m.upper()) for p, ops in spec["paths"].items() for m in ops}
    assert routes == described and len(described) == len(ENDPOINTS) == 15
    assert spec["paths"]["/api/tasks/{task_id}/retry"]["post"]["x-access"] == "action"


def test_without_the_credential_nothing_is_read_or_changed(console):
    tid = escalated_task(console.db)
    before = _counts(console.db)
    for e in ENDPOINTS:
        path = _concrete(e.path, tid)
        for creds in ({}, {"token": "wrong-token"}, {"cookie": "forged.cookie"}):
            answer = console.http.request(e.method, path, json_body={"note": "x", "source_uri":
                                                                     "file:///x.mp4"}
                                          if e.method == "POST" else None, **creds)
            assert answer.status == 401, (e.method, path, creds, answer.text)
            assert answer.headers["www-authenticate"].startswith("Bearer")
    # The page actions too: a sign-in is asked for, nothing happens.
    for action in ("retry", "resolve", "cancel"):
        answer = console.http.post(f"/tasks/{tid}/{action}", form={"note": "x"})
        assert answer.status == 303 and answer.headers["location"].startswith("/login")
    assert _counts(console.db) == before
    assert task_row(console.db, tid)["status"] == "escalated"


def test_a_cookie_session_needs_the_csrf_token(console):
    tid = escalated_task(console.db)
    cookie = console.http.login()
    before = _counts(console.db)
    # The cookie alone reads...
    assert console.http.get(f"/api/tasks/{tid}", cookie=cookie).status == 200
    # ...but acts only with the session's CSRF token.
    for headers in ({}, {"X-CSRF-Token": "not-the-token"}):
        answer = console.http.post(f"/api/tasks/{tid}/resolve", cookie=cookie,
                                   json_body={"note": "closing"}, headers=headers)
        assert answer.status == 403 and "CSRF" in answer.json()["error"]
    answer = console.http.post(f"/tasks/{tid}/resolve", cookie=cookie, form={"note": "closing"})
    assert answer.status == 403
    assert _counts(console.db) == before and task_row(console.db, tid)["status"] == "escalated"

    page = console.http.get(f"/tasks/{tid}", cookie=cookie).text
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    answer = console.http.post(f"/tasks/{tid}/resolve", cookie=cookie,
                               form={"note": "closing", "csrf_token": csrf, "next": "/escalations"})
    assert answer.status == 303 and answer.headers["location"].startswith("/escalations?flash=")
    st = task_row(console.db, tid)
    assert st["status"] == "failed" and st["events"][-1]["message"] == "closing"
    assert st["events"][-1]["worker_id"] == "console"
    # The same token as a header serves the API.
    tid2 = escalated_task(console.db)
    answer = console.http.post(f"/api/tasks/{tid2}/retry", cookie=cookie, json_body={},
                               headers={"X-CSRF-Token": csrf})
    assert answer.status == 200 and answer.json()["status"] == "queued"


def test_login_with_a_wrong_token_sets_no_cookie(console):
    answer = console.http.post("/login", form={"token": "guess", "next": "/"})
    assert answer.status == 401 and "set-cookie" not in answer.headers
    # A login link cannot send the browser to another site.
    answer = console.http.post("/login", form={"token": TOKEN, "next": "//evil.example/"})
    assert answer.status == 303 and answer.headers["location"] == "/"


def test_logout_needs_csrf_and_ends_the_session_in_the_browser(console):
    cookie = console.http.login()
    assert console.http.post("/logout", cookie=cookie).status == 403
    page = console.http.get("/", cookie=cookie).text
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    answer = console.http.post("/logout", cookie=cookie, form={"csrf_token": csrf})
    assert answer.status == 303 and 'framepress_session=""' in answer.headers["set-cookie"]


def test_every_endpoint_with_the_token(console, tmp_path):
    http, db = console.http, console.db
    # submit
    answer = http.post("/api/tasks", token=TOKEN, json_body={
        "source_uri": "file:///in/a.mp4", "priority": 3,
        "webhook": "http://127.0.0.1:9/hook?token=abc"})
    assert answer.status == 201
    queued = answer.json()["task_id"]
    assert TaskStore(db).get(queued).options == {"webhook": "http://127.0.0.1:9/hook?token=abc"}
    for bad, why in (({"source_uri": "file:///a.mp4", "ladder": "/etc/passwd"}, "built-in"),
                     ({"source_uri": "file:///a.mp4", "webhook": "ftp://x/"}, "webhook URL"),
                     ({"source_uri": "file:///a.mp4", "priority": "high"}, "priority"),
                     ({}, "source_uri")):
        answer = http.post("/api/tasks", token=TOKEN, json_body=bad)
        assert answer.status == 400 and why in answer.json()["error"], answer.text
    answer = http.request("POST", "/api/tasks", token=TOKEN, json_body={"source_uri": "x"},
                          headers={"Content-Type": "text/plain"})
    assert answer.status == 400 and "content type" in answer.json()["error"]
    escalated = escalated_task(db)
    # list and filter
    listed = http.get("/api/tasks", token=TOKEN).json()
    assert {t["id"] for t in listed} == {queued, escalated}
    assert [t["id"] for t in http.get("/api/tasks?status=escalated", token=TOKEN).json()] == [escalated]
    assert [t["id"] for t in http.get(f"/api/tasks?q={queued[:8]}", token=TOKEN).json()] == [queued]
    assert http.get("/api/tasks?status=bogus", token=TOKEN).status == 400
    assert http.get("/api/tasks?limit=x", token=TOKEN).status == 400
    # one task, its events, renditions, webhooks
    st = http.get(f"/api/tasks/{escalated}", token=TOKEN).json()
    assert st["status"] == "escalated" and st["last_error"] == "InputError: corrupt"
    events = http.get(f"/api/tasks/{escalated}/events", token=TOKEN).json()
    assert [e["kind"] for e in events] == ["taken", "error", "escalated"]
    assert http.get(f"/api/tasks/{escalated}/renditions", token=TOKEN).json() == []
    assert http.get(f"/api/tasks/{queued}/webhooks", token=TOKEN).json() == []
    assert http.get("/api/tasks/nope", token=TOKEN).status == 404
    assert http.get("/api/tasks/nope/events", token=TOKEN).status == 404
    # escalations, queue, workers, stats, webhooks
    assert [t["id"] for t in http.get("/api/escalations", token=TOKEN).json()] == [escalated]
    assert http.get("/api/escalations", token=TOKEN).json()[0]["escalation"]["kind"] == "permanent"
    queue = http.get("/api/queue", token=TOKEN).json()
    assert queue["messages"] == 1 and queue["tasks"] == {"queued": 1, "escalated": 1}
    _register_worker(db)
    workers = http.get("/api/workers", token=TOKEN).json()
    assert workers[0]["id"] == "w-1" and workers[0]["hardware"] == {"gpu": "none"}
    assert workers[0]["heartbeat_age_s"] >= 0 and workers[0]["current_task_id"] == queued
    stats = http.get("/api/stats", token=TOKEN).json()
    assert sum(b["submitted"] for b in stats["tasks_per_minute"]) == 2
    assert set(stats["stage_seconds"]) == {"details", "pull", "transcode", "upload", "publish"}
    assert http.get("/api/webhooks", token=TOKEN).json() == []
    # actions: 409 where the status does not allow one
    assert http.post(f"/api/tasks/{queued}/retry", token=TOKEN).status == 409
    assert http.post(f"/api/tasks/{escalated}/resolve", token=TOKEN, json_body={}).status == 409
    assert http.post("/api/tasks/nope/cancel", token=TOKEN).status == 404
    answer = http.post(f"/api/tasks/{escalated}/retry", token=TOKEN,
                       json_body={"note": "source fixed"})
    assert answer.status == 200 and answer.json()["previous_status"] == "escalated"
    resumed = task_row(db, escalated)["events"][-1]
    assert resumed["kind"] == "resumed" and resumed["data"]["note"] == "source fixed"
    answer = http.post(f"/api/tasks/{escalated}/cancel", token=TOKEN, json_body={"reason": "dup"})
    assert answer.status == 200 and task_row(db, escalated)["status"] == "cancelled"
    answer = http.post(f"/api/tasks/{queued}/resolve", token=TOKEN, json_body={"note": "n/a"})
    assert answer.status == 200 and task_row(db, queued)["status"] == "failed"
    assert http.post(f"/api/tasks/{queued}/resolve", token=TOKEN,
                     json_body=["not", "an", "object"]).status == 400


def test_a_tasks_output_files_are_served_and_nothing_beside_them(console, tmp_path):
    out = tmp_path / "out"
    tid = TaskStore(console.db).create("file:///in.mp4", out.as_uri(), {"name": "default",
                                                                        "rungs": []})
    (out / tid / "hls").mkdir(parents=True)
    (out / tid / "hls" / "master.m3u8").write_text("#EXTM3U\n")
    (out / "secret.txt").write_text("not for the page")
    answer = console.http.get(f"/api/tasks/{tid}/output/hls/master.m3u8", token=TOKEN)
    assert answer.status == 200 and answer.body == b"#EXTM3U\n"
    assert answer.headers["content-type"] == "application/vnd.apple.mpegurl"
    for path in ("../secret.txt", "hls/../../secret.txt", "%2e%2e/secret.txt", "hls/missing.ts",
                 "hls"):
        answer = console.http.get(f"/api/tasks/{tid}/output/{path}", token=TOKEN)
        assert answer.status == 404 and b"not for the page" not in answer.body, path
    assert console.http.get("/api/tasks/nope/output/x.m3u8", token=TOKEN).status == 404


def test_pages_need_a_sign_in_and_show_no_secret(console, caplog):
    tid = escalated_task(console.db)
    for path in ("/", f"/tasks/{tid}", "/escalations", "/workers", "/charts", "/webhooks"):
        answer = console.http.get(path)
        assert answer.status == 303 and answer.headers["location"] == "/login?next=" + path
    caplog.set_level(logging.DEBUG)
    cookie = console.http.login()
    for path in ("/", f"/tasks/{tid}", "/escalations", "/workers", "/charts", "/webhooks",
                 "/login"):
        answer = console.http.get(path, cookie=cookie)
        assert answer.status == 200, path
        assert TOKEN not in answer.text and "content-security-policy" in answer.headers
    assert tid[:8] in console.http.get("/escalations", cookie=cookie).text
    assert console.http.get("/tasks/nope", cookie=cookie).status == 404
    assert TOKEN not in caplog.text


def test_open_reads_still_guard_actions(tmp_path):
    running = start_console(embedded_settings(tmp_path, web_open_reads=True),
                            dispatch_webhooks=False)
    try:
        tid = escalated_task(running.db)
        assert running.http.get("/api/tasks").status == 200
        assert running.http.get("/escalations").status == 200
        assert running.http.post(f"/api/tasks/{tid}/retry").status == 401
        assert task_row(running.db, tid)["status"] == "escalated"
    finally:
        running.server.stop()


def test_without_an_admin_token_the_console_refuses_everything(tmp_path):
    running = start_console(embedded_settings(tmp_path, admin_token=None), dispatch_webhooks=False)
    try:
        for token in ("", "None", "anything"):
            assert running.http.get("/api/tasks", token=token or None).status == 401
        assert running.http.post("/login", form={"token": ""}).status == 401
        assert "No admin credential" in running.http.get("/login").text
    finally:
        running.server.stop()


def _register_worker(db) -> None:
    from framepress.service.db import Worker, utcnow
    queued = TaskStore(db).list(status="queued")[0]["id"]
    with db.session() as s:
        s.add(Worker(id="w-1", hostname="h", pid=1, version="0", hardware={"gpu": "none"},
                     state="busy", started_at=utcnow(), heartbeat_at=utcnow(),
                     current_task_id=queued, progress=0.5))


def test_cli_submit_takes_a_webhook(tmp_path):
    from support.services import embedded_env, run_framepress
    env = embedded_env(tmp_path)
    proc = run_framepress(env, "submit", "file:///in.mp4", "--webhook",
                          "https://hooks.example.com/a", "--json")
    import json
    tid = json.loads(proc.stdout)["task_id"]
    db = __import__("framepress.service.db", fromlist=["connect"]).connect(
        embedded_settings(tmp_path, admin_token=None))
    assert TaskStore(db).get(tid).options == {"webhook": "https://hooks.example.com/a"}
    bad = run_framepress(env, "submit", "file:///in.mp4", "--webhook", "not a url", check=False)
    assert bad.returncode == 2 and "webhook URL" in bad.stderr
    assert Path(tmp_path / "data" / "framepress.db").is_file()
