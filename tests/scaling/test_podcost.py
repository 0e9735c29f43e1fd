"""The reaper's pod-cost step: which worker pod gets which deletion cost, decided from real
workers and tasks rows in Postgres, and the exact requests the client sends to the API server.

Not covered here: a real API server answering them (no cluster on the test machines). The
requests are checked field by field against the Kubernetes API (paths, verbs, merge-patch body);
the failure path runs against a loopback port that refuses connections."""
import json
import logging
import threading
import uuid

import psycopg
import pytest
from sqlalchemy import update

from framepress.scaling import podcost
from framepress.service.failure import reaper as reaping
from framepress.config import Settings
from framepress.service.db import Worker, connect, utcnow
from framepress.scaling.podcost import DELETION_COST, SAFE_TO_EVICT, KubeApi, PodCost
from framepress.service.tasks import TaskStore
from support.services import PG_ADMIN_URL, RecordingBroker, free_port, scratch_database

pytestmark = pytest.mark.timeout(60)

BUSY = {DELETION_COST: "1000", SAFE_TO_EVICT: "false"}
IDLE = {DELETION_COST: "0", SAFE_TO_EVICT: "true"}


@pytest.fixture(scope="module")
def pg():
    with scratch_database(PG_ADMIN_URL, f"fp_podcost_{uuid.uuid4().hex[:10]}") as url:
        yield url


@pytest.fixture
def db(pg):
    db = connect(Settings(database_url=pg))
    with db.session() as s:
        s.query(Worker).delete()
    yield db
    db.dispose()


def register(db, worker_id, pod, state="idle"):
    """The row a worker writes when it starts (worker.Worker registers the same fields)."""
    with db.session() as s:
        s.add(Worker(id=worker_id, hostname=f"host-{worker_id}", pod=pod, node="node-1", pid=1,
                     version="test", hardware={}, state=state, started_at=utcnow(),
                     heartbeat_at=utcnow()))


def beat(db, worker_id, state, task_id):
    """What the heartbeat thread writes."""
    with db.session() as s:
        s.execute(update(Worker).where(Worker.id == worker_id)
                  .values(state=state, current_task_id=task_id, heartbeat_at=utcnow()))


def test_busy_pods_from_the_workers_and_tasks_tables(db):
    store = TaskStore(db)
    new_task = lambda: store.create("s3://in/a.mp4", "s3://out/a", {"renditions": []})  # noqa: E731

    register(db, "w-taken", "pod-taken")        # took a task; no heartbeat since
    t1 = new_task()
    lease = store.take(t1, "w-taken", {}).lease
    assert lease is not None
    register(db, "w-beat", "pod-beat")          # its heartbeat names the task
    t2 = new_task()
    store.take(t2, "w-beat", {})
    beat(db, "w-beat", "busy", t2)
    register(db, "w-draining", "pod-draining")  # draining, task still running: keep it
    t3 = new_task()
    store.take(t3, "w-draining", {})
    beat(db, "w-draining", "draining", t3)
    register(db, "w-idle", "pod-idle")
    register(db, "w-lost", "pod-lost")          # declared lost while holding a task
    t4 = new_task()
    store.take(t4, "w-lost", {})
    beat(db, "w-lost", "lost", t4)
    register(db, "w-old", "pod-restarted")      # the container restarted: old row stopped,
    beat(db, "w-old", "stopped", None)          # the new process idle
    register(db, "w-new", "pod-restarted")
    register(db, "w-local", None, "busy")       # outside Kubernetes: no pod
    beat(db, "w-local", "busy", new_task())

    assert podcost.busy_pods(db) == {"pod-taken", "pod-beat", "pod-draining"}

    # The task ends: the pod turns idle at once, before the next heartbeat clears the row.
    store.succeed(lease, renditions=[], data={})
    assert podcost.busy_pods(db) == {"pod-beat", "pod-draining"}


def test_only_pods_whose_annotations_differ_are_patched():
    pods = {
        "pod-busy-new": {},                                  # just took a task
        "pod-busy-done": dict(BUSY, other="kept"),           # already right
        "pod-idle-stale": dict(BUSY),                        # finished its task
        "pod-idle-done": dict(IDLE),
        "pod-starting": {},                                  # no worker row yet: idle
        "pod-half": {DELETION_COST: "1000"},                 # one annotation missing
    }
    busy = {"pod-busy-new", "pod-busy-done", "pod-half", "pod-gone"}
    assert podcost.changes(pods, busy) == {
        "pod-busy-new": BUSY, "pod-idle-stale": IDLE, "pod-starting": IDLE, "pod-half": BUSY}


def test_live_pods_from_a_pod_list():
    doc = {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"}, "items": [
        {"metadata": {"name": "a", "annotations": dict(BUSY)}, "status": {"phase": "Running"}},
        {"metadata": {"name": "b"}, "status": {"phase": "Pending"}},
        {"metadata": {"name": "c"}, "status": {"phase": "Succeeded"}},
        {"metadata": {"name": "d"}, "status": {"phase": "Failed"}},
    ]}
    assert podcost.live_pods(doc) == {"a": BUSY, "b": {}}


def test_the_requests_sent_to_the_api_server(tmp_path):
    token = tmp_path / "token"
    token.write_text("tok-1\n")
    api = KubeApi("https://10.96.0.1:443", "framepress", str(token), str(tmp_path / "ca.crt"))

    req = api.list_request(podcost.WORKER_PODS)
    assert req.get_method() == "GET" and req.data is None
    assert req.full_url == ("https://10.96.0.1:443/api/v1/namespaces/framepress/pods?labelSelector="
                            "app.kubernetes.io%2Fname%3Dframepress%2Capp.kubernetes.io%2Fcomponent%3Dworker")
    assert req.get_header("Authorization") == "Bearer tok-1"
    assert req.get_header("Accept") == "application/json"

    token.write_text("tok-2\n")  # the kubelet rotated it: read for each request
    req = api.patch_request("framepress-worker-gpu-7c9d-x2", BUSY)
    assert req.get_method() == "PATCH"
    assert req.full_url == "https://10.96.0.1:443/api/v1/namespaces/framepress/pods/framepress-worker-gpu-7c9d-x2"
    assert req.get_header("Content-type") == "application/merge-patch+json"
    assert req.get_header("Authorization") == "Bearer tok-2"
    assert json.loads(req.data) == {"metadata": {"annotations": {
        "controller.kubernetes.io/pod-deletion-cost": "1000",
        "cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}}}


def test_in_cluster_configuration(tmp_path, monkeypatch):
    assert KubeApi.from_environment({}, sa_dir=str(tmp_path)) is None
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "6443"}
    assert KubeApi.from_environment(env, sa_dir=str(tmp_path)) is None  # no token mounted
    (tmp_path / "token").write_text("t")
    (tmp_path / "namespace").write_text("framepress\n")
    api = KubeApi.from_environment(env, sa_dir=str(tmp_path))
    assert (api.base_url, api.namespace) == ("https://10.96.0.1:6443", "framepress")
    assert api.ca_file == str(tmp_path / "ca.crt")
    api = KubeApi.from_environment({**env, "KUBERNETES_SERVICE_HOST": "fd00::1", "POD_NAMESPACE": "other"},
                                   sa_dir=str(tmp_path))
    assert (api.base_url, api.namespace) == ("https://[fd00::1]:6443", "other")


def test_an_unreachable_api_server_is_logged_once_and_never_raised(db, tmp_path, caplog):
    (tmp_path / "token").write_text("t")
    api = KubeApi(f"http://127.0.0.1:{free_port()}", "framepress", str(tmp_path / "token"), timeout_s=2)
    step = PodCost(db, api)
    with caplog.at_level(logging.INFO, logger="framepress.podcost"):
        assert step.update() == {}
        assert step.update() == {}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "Connection refused" in warnings[0].getMessage()


def test_the_step_runs_every_interval_even_when_another_process_leads(pg):
    """Only the reaper deployment holds the credentials, but any process may lead the reaping:
    the pod-cost step must not wait for leadership."""
    db = connect(Settings(database_url=pg))
    holder = psycopg.connect(pg, autocommit=True)
    try:
        holder.execute("SELECT pg_advisory_lock(%s)", (reaping.REAPER_LOCK_ID,))
        calls, rounds, stop = [], [], threading.Event()

        def alongside():
            calls.append(1)
            if len(calls) == 3:
                stop.set()

        r = reaping.Reaper(db, RecordingBroker())
        t = threading.Thread(target=reaping.run, args=(r, stop),
                             kwargs={"interval": 0.05, "on_round": rounds.append, "alongside": alongside})
        t.start()
        t.join(30)
        assert not t.is_alive()
        assert len(calls) == 3 and rounds == []  # never led a round, stepped every interval
    finally:
        holder.close()
        db.dispose()
