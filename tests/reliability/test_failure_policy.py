"""The worker's failure policy and reliability kit, without services."""
import errno
import threading
import types

from framepress.breaker import Breakers, CircuitBreaker
from framepress.config import Settings
from framepress.errors import EncodeError, InputError
from framepress.failure import ESCALATE, RETRY, Failure
from framepress.failure_policy import DEFER, BackoffPolicy
from framepress.retry import RetryPolicy
from framepress.service_errors import SourceMissing, StorageError
from framepress.worker_reliability import WorkerReliability, escalations_queue_for

from fakeclock import FakeClock


def _fail(exc, stage="transcode", attempt=1, max_attempts=3):
    return Failure(task_id="t1", stage=stage, error=exc, attempt=attempt, max_attempts=max_attempts)


def _refused_storage_error():
    try:
        try:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        except OSError:
            raise StorageError("cannot read s3://b/k", step="pull") from None
    except StorageError as e:
        return e


def test_decisions():
    clock = FakeClock()
    s3 = CircuitBreaker("s3", failure_threshold=2, probe_interval=3, clock=clock)
    p = BackoffPolicy(RetryPolicy(initial=1, jitter="none"), breakers=Breakers([s3]))
    d = p.decide(_fail(InputError("moov atom not found")))
    assert d.action == ESCALATE and d.data["escalation"] == "permanent"
    d = p.decide(_fail(SourceMissing("no such key"), stage="pull"))
    assert d.action == ESCALATE
    d = p.decide(_fail(EncodeError("nvenc busy"), attempt=2))
    assert d.action == RETRY and d.delay_s == 2 and d.data["next_attempt"] == 3
    d = p.decide(_fail(EncodeError("nvenc busy"), attempt=3))
    assert d.action == ESCALATE and d.data["escalation"] == "exhausted"

    # `from None` hides the cause from tracebacks but keeps __context__: still a dependency.
    d = p.decide(_fail(_refused_storage_error(), stage="pull", attempt=3))
    assert d.action == DEFER and d.data["dependency"] == "s3"
    assert s3.state == "closed"
    d = p.decide(_fail(_refused_storage_error(), stage="upload", attempt=3))
    assert d.action == DEFER and s3.state == "open" and d.delay_s == 3   # waits for the probe


def test_escalations_queue_keeps_the_prefix():
    assert escalations_queue_for("framepress.tasks") == "framepress.escalations"
    assert escalations_queue_for("t123.framepress.tasks") == "t123.framepress.escalations"


def _kit(s3_up):
    settings = Settings.from_env({}, max_attempts=4, heartbeat_seconds=1.0, lease_seconds=5.0,
                                 breaker_threshold=1, breaker_probe_seconds=0.05)
    broker = types.SimpleNamespace(tasks_queue="x.framepress.tasks", published=[],
                                   publish_json=lambda q, m: broker.published.append((q, m)))
    db = types.SimpleNamespace(engine=None)

    def probe():
        if not s3_up["ok"]:
            raise ConnectionRefusedError("down")
    return WorkerReliability(settings, "w1", db, broker, s3_probe=probe), broker


def test_wait_for_dependencies_pauses_until_the_probe_passes():
    up = {"ok": False}
    kit, _ = _kit(up)
    assert kit.retry.max_attempts == 4
    kit.health.set_connected(True)
    from botocore.exceptions import EndpointConnectionError
    kit.record_unhandled(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
    assert kit.breakers["s3"].is_open and not kit.breakers["database"].is_open and kit.health.readyz() == (False, "paused: s3 unavailable")
    threading.Timer(0.3, lambda: up.update(ok=True)).start()
    stop = threading.Event()
    assert kit.wait_for_dependencies(stop) is True
    assert not kit.breakers.any_open()
    assert kit.health.readyz() == (True, "ok")


def test_wait_for_dependencies_gives_up_on_stop():
    kit, _ = _kit({"ok": False})
    kit.breakers["s3"].trip("down")
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    assert kit.wait_for_dependencies(stop) is False


def test_kit_escalations_queue_has_the_prefix():
    kit, _broker = _kit({"ok": True})
    assert kit.escalations_queue == "x.framepress.escalations"


def test_unhandled_dependency_errors_default_to_the_database():
    kit, _ = _kit({"ok": True})
    kit.record_unhandled(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
    assert kit.breakers["database"].is_open and not kit.breakers["s3"].is_open
    kit.record_unhandled(ValueError("a bug, not an outage"))      # not a dependency: ignored


def test_task_watch_cancels_and_explains():
    import time
    from framepress.errors import Cancelled
    from framepress.retry import TRANSIENT, classify
    from framepress.worker_reliability import TaskTimeout, TaskWatch

    class Token:
        cancelled = False

        def cancel(self):
            self.cancelled = True
    token = Token()
    watch = TaskWatch(token, 0.1)
    time.sleep(0.3)
    assert token.cancelled and watch.expired
    err = watch.explain(Cancelled("cancelled"))
    assert isinstance(err, TaskTimeout) and classify(err, "transcode") == TRANSIENT
    quiet = TaskWatch(Token(), 0)                  # no limit: no timer, errors unchanged
    e = ValueError("x")
    assert quiet.explain(e) is e
    quiet.cancel()
