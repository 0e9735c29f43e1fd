"""The console and the webhooks on the production stack: Postgres, RabbitMQ and S3 (moto over
HTTP). The queue depth is RabbitMQ's own count; the player's files come from S3; dispatchers on
two threads share the deliveries through Postgres row locks, each event POSTed once."""
from __future__ import annotations

import threading
import time
import uuid

import boto3
import pytest

from framepress.config import Settings
from framepress.service.db import connect
from framepress.webhooks import Subscriptions
from framepress.webhooks.dispatcher import Dispatcher, list_deliveries

from support.services import (AMQP_URL, PG_ADMIN_URL, delete_queues_with_prefix, moto_server,
                              scratch_database, wait_for)

from .conftest import SECRET, TOKEN, escalated_task, start_console
from .receiver import Receiver

pytestmark = pytest.mark.timeout(120)
BUCKET = "fp-console"


@pytest.fixture
def production(tmp_path, monkeypatch):
    prefix = f"fpweb{uuid.uuid4().hex[:8]}."
    with moto_server() as port, scratch_database(PG_ADMIN_URL, f"fp_web_{uuid.uuid4().hex[:10]}") as url:
        env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        settings = Settings.from_env({}, database_url=url, broker_url=AMQP_URL,
                                     queue_prefix=prefix, output_uri=f"s3://{BUCKET}/out",
                                     data_dir=str(tmp_path / "data"), metrics_port=0,
                                     admin_token=TOKEN, webhook_secret=SECRET)
        try:
            yield settings, s3
        finally:
            delete_queues_with_prefix(AMQP_URL, prefix)


def test_queue_depth_outputs_and_actions_on_the_production_stack(production):
    settings, s3 = production
    console = start_console(settings, dispatch_webhooks=False)
    try:
        http = console.http
        empty = http.get("/api/queue", token=TOKEN).json()
        assert empty["messages"] == 0 and empty["queue"] == settings.queue_name()
        ids = [http.post("/api/tasks", token=TOKEN,
                         json_body={"source_uri": f"s3://{BUCKET}/in/{n}.mp4"}).json()["task_id"]
               for n in range(3)]
        depth = wait_for(lambda: (q := http.get("/api/queue", token=TOKEN).json())["messages"] == 3
                         and q, 10, "RabbitMQ to count three messages")
        assert depth["consumers"] == 0 and depth["tasks"] == {"queued": 3}
        # The player's files come from the task's S3 output.
        s3.put_object(Bucket=BUCKET, Key=f"out/{ids[0]}/hls/master.m3u8", Body=b"#EXTM3U\n")
        answer = http.get(f"/api/tasks/{ids[0]}/output/hls/master.m3u8", token=TOKEN)
        assert answer.status == 200 and answer.body == b"#EXTM3U\n"
        assert http.get(f"/api/tasks/{ids[1]}/output/hls/master.m3u8", token=TOKEN).status == 404
        # An operator's retry publishes through RabbitMQ.
        bad = escalated_task(console.db, source=f"s3://{BUCKET}/in/bad.mp4",
                             output=f"s3://{BUCKET}/out")
        answer = http.post(f"/api/tasks/{bad}/retry", token=TOKEN, json_body={"note": "again"})
        assert answer.status == 200 and answer.json()["published"] is True
        wait_for(lambda: http.get("/api/queue", token=TOKEN).json()["messages"] == 4, 10,
                 "the retried task's message")
    finally:
        console.server.stop()


def test_two_dispatchers_on_postgres_post_each_event_once(production):
    settings, _ = production
    receiver = Receiver(SECRET)
    receiver.answer = lambda arrival: time.sleep(0.05) or 204   # slow enough that both work
    db = connect(settings.with_(webhook_url=receiver.url))
    try:
        subs = Subscriptions(global_url=receiver.url)
        from framepress.service.tasks import TaskStore
        store = TaskStore(db, lease_seconds=30)
        store.webhooks = subs
        tasks = [escalated_task(db, store=store) for _ in range(12)]
        dispatchers = [Dispatcher(db, SECRET, dispatcher_id=f"d{i}") for i in range(2)]
        threads = [threading.Thread(target=d.run_once) for d in dispatchers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not list_deliveries(db, status="pending", attempts=False)
        assert sorted(receiver.ids_seen()) == sorted(d["id"] for d in list_deliveries(db))
        assert len(receiver.arrivals) == 12 and {t for _, t in receiver.received()} == set(tasks)
        by = {t["dispatcher"] for d in list_deliveries(db) for t in d["tries"]}
        assert by == {"d0", "d1"}            # both took a share
    finally:
        receiver.stop()
        db.dispose()
