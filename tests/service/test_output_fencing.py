"""Side effects fenced: an attempt uploads under its own prefix, and only the attempt that commits
success under a current lease publishes the task's output. Objects of fenced, failed and
cancelled attempts are deleted. Real Postgres and RabbitMQ, S3 from moto over HTTP."""
from __future__ import annotations

import pytest
from datetime import timedelta

from sqlalchemy import select, update

from framepress.service import admin
from framepress.service.db import OutboxRow, Task, utcnow
from framepress.service.tasks import TaskStore

from .conftest import BUCKET, TINY_LADDER, kinds, wait_for, wait_settled


def _keys(s3, settings, task_id: str) -> list[str]:
    prefix = f"{settings.output_uri[len('s3://' + BUCKET) + 1:]}/{task_id}/"
    resp = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"][len(prefix):] for o in resp.get("Contents", []))


def _staged(db, task_id: str) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(OutboxRow.kind).where(OutboxRow.task_id == task_id)).all())


def _uploaded(st: dict) -> dict:
    return next(e for e in st["events"] if e["kind"] == "uploaded")["data"]


@pytest.mark.timeout(90)
def test_a_succeeded_task_has_exactly_its_outputs(client, run_worker, source_uris, s3, settings):
    with run_worker():
        task_id = client.submit(source_uris["clip144"], ladder=TINY_LADDER)
        st = wait_settled(client, task_id)
    assert st["status"] == "succeeded"
    up = _uploaded(st)
    assert f"/{task_id}/.attempts/" in up["attempt_prefix"]        # uploads went there first
    assert _keys(s3, settings, task_id) == sorted(up["keys"])       # then published, nothing else
    assert {"144p.mp4", "hls/master.m3u8", "hls/144p.m3u8"} <= set(up["keys"])


@pytest.mark.timeout(90)
def test_a_fenced_attempt_leaves_no_objects(client, run_worker, source_uris, s3, settings,
                                            monkeypatch):
    """The lease is taken away between the upload and the success commit (what a takeover or
    the reaper does): the commit is refused and the attempt's uploads are deleted."""
    real_succeed = TaskStore.succeed
    fenced = []

    def succeed_after_a_takeover(self, lease, *args, **kwargs):
        assert _keys(s3, settings, lease.task_id)                  # the attempt did upload
        with self.db.session() as s:                               # another worker took over
            s.execute(update(Task).where(Task.id == lease.task_id)
                      .values(lease_token=Task.lease_token + 1, worker_id="another-worker",
                              lease_expires_at=utcnow() + timedelta(minutes=10)))
        fenced.append(lease.task_id)
        return real_succeed(self, lease, *args, **kwargs)
    monkeypatch.setattr(TaskStore, "succeed", succeed_after_a_takeover)
    with run_worker() as worker:
        task_id = client.submit(source_uris["clip144"], ladder=TINY_LADDER)
        wait_for(lambda: worker.tasks_done == 1, 60, "the attempt to end")
    st = client.status(task_id)
    assert fenced == [task_id]
    assert st["status"] == "running" and "succeeded" not in kinds(st)   # the new holder's
    assert _keys(s3, settings, task_id) == []


@pytest.mark.timeout(90)
def test_a_task_cancelled_during_its_upload_leaves_no_objects(client, run_worker, source_uris,
                                                              s3, settings, monkeypatch):
    from framepress.service.storage.s3 import S3Storage
    real_upload = S3Storage.upload
    cancelled = []

    def upload_then_cancel(self, src, uri):
        out = real_upload(self, src, uri)
        task_id = uri.split("/.attempts/")[0].rsplit("/", 1)[1]
        if not cancelled:
            cancelled.append(admin.cancel(client.db, task_id, reason="changed my mind"))
        return out
    monkeypatch.setattr(S3Storage, "upload", upload_then_cancel)
    with run_worker() as worker:
        task_id = client.submit(source_uris["clip144"], ladder=TINY_LADDER)
        wait_for(lambda: worker.tasks_done == 1, 60, "the attempt to end")
        # The attempt deleted its own uploads; the cleanup staged by the cancel finds nothing
        # left, and is done.
        wait_for(lambda: not _staged(client.db, task_id), 30, "the cleanup job")
    st = client.status(task_id)
    assert st["status"] == "cancelled" and cancelled[0]["previous_status"] == "running"
    assert "succeeded" not in kinds(st)
    assert _keys(s3, settings, task_id) == []
