"""The failure policy, the worker's dependency breakers and the task time limit, without
services."""
import errno
import threading
import time
import types

import pytest

from framepress.errors import Cancelled, EncodeError, InputError
from framepress.service.failure.backoff import RetryPolicy
from framepress.service.failure.breaker import Breakers, CircuitBreaker
from framepress.service.failure.classification import TRANSIENT, classify
from framepress.service.failure.dependencies import Dependencies
from framepress.service.failure.escalation import escalations_queue_for
from framepress.service.failure.policy import (DEFER, ESCALATE, RETRY, BackoffPolicy, Failure,
                                               error_details)
from framepress.service.failure.timeout import TaskTimeout, TaskWatch
from framepress.service.errors import SourceMissing, StorageError

from fakeclock import FakeClock


def _fail(exc, stage="transcode", attempt=1, max_attempts=3, age_s=0.0):
    return Failure(task_id="t1", stage=stage, error=exc, attempt=attempt,
                   max_attempts=max_attempts, age_s=age_s)


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

    # `from None` hides the cause from tracebacks but keeps __context__: still an outage.
    d = p.decide(_fail(_refused_storage_error(), stage="pull", attempt=3))
    assert d.action == DEFER and d.data["dependency"] == "s3"
    assert s3.state == "closed"
    d = p.decide(_fail(_refused_storage_error(), stage="upload", attempt=3))
    assert d.action == DEFER and s3.state == "open" and d.delay_s == 3   # waits for the probe



def test_outages_defer_until_the_deadline():
    p = BackoffPolicy(RetryPolicy(initial=1, jitter="none"), deadline_s=60)
    d = p.decide(_fail(_refused_storage_error(), stage="pull", attempt=5, max_attempts=5,
                       age_s=59))
    assert d.action == DEFER                          # no attempt counted, none escalated
    d = p.decide(_fail(_refused_storage_error(), stage="pull", age_s=61))
    assert d.action == ESCALATE and d.data["escalation"] == "deadline"
    assert "deadline" in d.reason and "s3 unavailable" in d.reason
    # The deadline bounds outages only: a transient error still gets its attempts.
    assert p.decide(_fail(EncodeError("busy"), age_s=1e6)).action == RETRY


def test_decorrelated_backoff_uses_the_previous_delay():
    import random
    p = BackoffPolicy(RetryPolicy(initial=1, maximum=1000, jitter="decorrelated",
                                  rng=random.Random(5)))
    small = [p.decide(_fail(EncodeError("x"), attempt=2, max_attempts=9), 1.0).delay_s
             for _ in range(50)]
    large = [p.decide(_fail(EncodeError("x"), attempt=2, max_attempts=9), 100.0).delay_s
             for _ in range(50)]
    assert max(small) <= 3 and sum(large) / 50 > 50


def test_error_details_use_the_one_classifier():
    details = error_details(_refused_storage_error(), "pull")
    assert details["class"] == "dependency" and details["permanent"] is False
    details = error_details(SourceMissing("gone", step="pull"), "pull")
    assert details == {"type": "SourceMissing", "class": "permanent", "permanent": True,
                       "step": "pull"}


def test_escalations_queue_keeps_the_prefix():
    assert escalations_queue_for("framepress.tasks") == "framepress.escalations"
    assert escalations_queue_for("t123.framepress.tasks") == "t123.framepress.escalations"


def _dependencies(s3_up, changes=None):
    def probe():
        if not s3_up["ok"]:
            raise ConnectionRefusedError("down")
    return Dependencies(types.SimpleNamespace(engine=None), failure_threshold=1,
                        probe_interval=0.05, s3_probe=probe,
                        on_change=(changes.append if changes is not None else None))


def test_wait_for_dependencies_pauses_until_the_probe_passes():
    from botocore.exceptions import EndpointConnectionError
    up, changes = {"ok": False}, []
    deps = _dependencies(up, changes)
    assert deps.record_outage(EndpointConnectionError(endpoint_url="http://127.0.0.1:1")) == "s3"
    assert deps["s3"].is_open and not deps["database"].is_open and changes == [["s3"]]
    threading.Timer(0.3, lambda: up.update(ok=True)).start()
    assert deps.wait(threading.Event()) is True
    assert not deps.any_open() and changes[-1] == []


def test_wait_for_dependencies_gives_up_on_stop():
    deps = _dependencies({"ok": False})
    deps["s3"].record_failure("down")
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    assert deps.wait(stop) is False


def test_unhandled_outages_default_to_the_database():
    deps = _dependencies({"ok": True})
    assert deps.record_outage(ConnectionRefusedError(errno.ECONNREFUSED, "refused")) == "database"
    assert deps["database"].is_open and not deps["s3"].is_open
    assert deps.record_outage(ValueError("a bug, not an outage")) is None


def test_task_watch_cancels_and_explains():
    fired = []
    watch = TaskWatch(lambda: fired.append(1), 0.1)
    time.sleep(0.3)
    assert fired == [1] and watch.expired
    err = watch.error(Cancelled("cancelled"))
    assert isinstance(err, TaskTimeout) and classify(err, "transcode") == TRANSIENT
    assert isinstance(err.__cause__, Cancelled)
    quiet = TaskWatch(lambda: fired.append(2), 0)          # no limit: no timer
    time.sleep(0.05)
    quiet.cancel()
    assert fired == [1] and not quiet.expired
