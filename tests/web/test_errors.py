"""The console's and the dispatcher's error paths, each made to happen: a broker that does not
answer, actions the task's status refuses, bad submissions from the page, cookies that are
forged, expired or not ours, a port already taken, a database that is away."""
from __future__ import annotations

import base64
import json
import logging
import threading
import time

import pytest

from framepress.service.db import connect
from framepress.web import outputs
from framepress.web.auth import Auth, _b64
from framepress.webhooks.dispatcher import Dispatcher, run

from support.services import free_port

from .conftest import TOKEN, embedded_settings, escalated_task, start_console, task_row

pytestmark = pytest.mark.timeout(60)


def test_a_broker_that_does_not_answer_is_a_503(tmp_path):
    url = f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"     # nothing listens there
    running = start_console(embedded_settings(tmp_path, broker_url=url), dispatch_webhooks=False)
    try:
        answer = running.http.get("/api/queue", token=TOKEN)
        assert answer.status == 503 and "does not answer" in answer.json()["error"]
        # The pages still render, with the depth unknown.
        assert running.http.get("/charts", token=TOKEN).status == 200
    finally:
        running.server.stop()


def test_page_actions_the_status_refuses_come_back_with_the_reason(console):
    cookie = console.http.login()
    csrf = console.http.get("/", cookie=cookie).text.split(
        'name="csrf_token" value="', 1)[1].split('"', 1)[0]
    tid = escalated_task(console.db)
    console.http.post(f"/api/tasks/{tid}/cancel", token=TOKEN)
    answer = console.http.post(f"/tasks/{tid}/resolve", cookie=cookie,
                               form={"csrf_token": csrf, "note": "x", "next": f"/tasks/{tid}"})
    assert answer.status == 303 and "error=" in answer.headers["location"]
    assert "cancelled" in console.http.get(answer.headers["location"], cookie=cookie).text
    assert task_row(console.db, tid)["status"] == "cancelled"
    answer = console.http.post("/tasks/nope/retry", cookie=cookie,
                               form={"csrf_token": csrf, "next": "/escalations?x=1"})
    assert answer.status == 303
    assert answer.headers["location"].startswith("/escalations?x=1&error=no%20task")
    # A submission the console refuses, and one it takes.
    answer = console.http.post("/tasks", cookie=cookie, form={"csrf_token": csrf,
                                                              "source_uri": "file:///a.mp4",
                                                              "ladder": "/etc/passwd"})
    assert answer.status == 303 and answer.headers["location"].startswith("/?error=")
    answer = console.http.post("/tasks", cookie=cookie, form={"csrf_token": csrf,
                                                              "source_uri": "file:///a.mp4"})
    assert answer.status == 303 and answer.headers["location"].startswith("/tasks/")


def test_an_invalid_ladder_object_is_a_400(console):
    answer = console.http.post("/api/tasks", token=TOKEN,
                               json_body={"source_uri": "file:///a.mp4", "ladder": {"rungs": 3}})
    assert answer.status == 400
    answer = console.http.post("/api/tasks", token=TOKEN)          # no body at all
    assert answer.status == 400 and "source_uri" in answer.json()["error"]
    answer = console.http.post("/login", json_body={"token": TOKEN},
                               headers={"Content-Type": "text/plain"})
    assert answer.status == 401 and "set-cookie" not in answer.headers


def test_cookies_that_are_forged_expired_or_not_ours_are_refused():
    auth = Auth(TOKEN, session_s=60)
    good = auth.new_session()
    assert auth.session_of(good)
    body, sig = good.split(".")
    assert auth.session_of("no-dot-at-all") is None
    assert auth.session_of(body + "." + sig[:-2] + "AA") is None              # tampered
    assert Auth("another-token").session_of(good) is None                      # another key
    expired = json.dumps({"sid": "s", "exp": int(time.time()) - 1}).encode()
    assert auth.session_of(f"{_b64(expired)}.{auth._sign(expired)}") is None
    not_json = b"\xff\xfe not json"
    assert auth.session_of(f"{_b64(not_json)}.{auth._sign(not_json)}") is None
    assert auth.session_of("!!!." + sig) is None                               # not base64
    assert Auth(None).identify(f"Bearer {TOKEN}", good) is None                # no token set


def test_a_port_already_taken_is_reported(console, settings, tmp_path):
    from framepress.service.errors import ConfigError
    from framepress.web.server import Server
    server = Server(settings, host="127.0.0.1", port=console.server.port, dispatch_webhooks=False)
    with pytest.raises(ConfigError, match="cannot listen on 127.0.0.1"):
        server.start(timeout=5)
    # The command line says so in one line, exit 2.
    from support.services import embedded_env, run_framepress
    proc = run_framepress(embedded_env(tmp_path), "web", "--host", "127.0.0.1", "--port",
                          str(console.server.port), check=False, timeout=30)
    assert proc.returncode == 2 and "cannot listen on" in proc.stderr


def test_outputs_of_an_unknown_scheme_are_missing():
    with pytest.raises(outputs.OutputMissing):
        outputs.read("gs://bucket/out", "t", "hls/master.m3u8")
    assert outputs.content_type("a/b.m4s") == "video/iso.segment"


def test_a_dispatcher_round_that_fails_is_logged_and_the_loop_goes_on(tmp_path, caplog):
    from framepress.config import Settings
    away = Settings.from_env({}, database_url=f"postgresql://u@127.0.0.1:{free_port()}/none")
    from framepress.service.db import Database, make_engine
    from sqlalchemy.orm import sessionmaker
    engine = make_engine(away.sqlalchemy_url)
    db = Database(engine=engine, sessions=sessionmaker(engine))
    dispatcher = Dispatcher(db, "whsec_" + base64.b64encode(b"k" * 24).decode())
    stop = threading.Event()
    caplog.set_level(logging.WARNING, "framepress.webhooks")
    thread = threading.Thread(target=run, args=(dispatcher, stop), kwargs={"interval": 0.05})
    thread.start()
    time.sleep(1.0)
    stop.set()
    thread.join(20)
    assert not thread.is_alive()
    assert caplog.text.count("webhook round failed") >= 2      # tried again, never raised
    engine.dispose()
