import errno
import random

import pytest

from framepress.errors import EncodeError, InputError, LadderError, OutputError
from framepress.service.failure.backoff import RetryPolicy
from framepress.service.failure.classification import DEPENDENCY, PERMANENT, TRANSIENT, classify


def test_defaults():
    p = RetryPolicy()
    assert (p.initial, p.factor, p.maximum, p.max_attempts, p.jitter) == (2.0, 2.0, 300.0, 5, "full")


def test_base_delay_grows_and_caps():
    p = RetryPolicy(jitter="none")
    assert [p.delay_for(n) for n in range(1, 6)] == [2, 4, 8, 16, 32]
    assert p.delay_for(9) == 300 and p.delay_for(10_000) == 300


def test_full_jitter_stays_within_bounds():
    p = RetryPolicy(rng=random.Random(1))
    for n in range(1, 12):
        for _ in range(50):
            d = p.delay_for(n)
            assert p.min_delay <= d <= p.base_delay(n)
    assert len({round(p.delay_for(5), 3) for _ in range(20)}) > 10   # actually jittered


def test_decorrelated_jitter():
    p = RetryPolicy(jitter="decorrelated", rng=random.Random(2), maximum=60)
    prev = None
    for n in range(1, 30):
        d = p.delay_for(n, prev)
        assert p.initial <= d <= 60
        assert d <= max(p.initial, (prev or p.initial) * 3)
        prev = d


def test_decorrelated_jitter_grows():
    """Passed the previous delay, decorrelated jitter climbs towards the cap; without it, it
    estimates the previous delay from the attempt number, so it still grows."""
    p = RetryPolicy(jitter="decorrelated", rng=random.Random(3), initial=1, maximum=300)
    for previous in (None, "chained"):
        means = []
        for n in (1, 4, 8):
            runs = []
            for _ in range(200):
                prev = None
                for k in range(1, n + 1):
                    d = p.delay_for(k, prev if previous else None)
                    prev = d
                runs.append(d)
            means.append(sum(runs) / len(runs))
        assert means[0] < means[1] < means[2], (previous, means)
        assert means[2] > 10 * means[0]


def test_settable():
    p = RetryPolicy(max_attempts=3, initial=0.1, factor=3, maximum=1)
    assert p.base_delay(3) == pytest.approx(0.9)


def test_from_settings_and_validation():
    from framepress.config import Settings
    settings = Settings.from_env({"FRAMEPRESS_RETRY_INITIAL": "0.5", "FRAMEPRESS_MAX_ATTEMPTS": "7",
                                  "FRAMEPRESS_RETRY_JITTER": "none"})
    p = RetryPolicy.from_settings(settings, maximum=10)
    assert (p.initial, p.max_attempts, p.maximum, p.jitter) == (0.5, 7, 10, "none")
    with pytest.raises(ValueError):
        RetryPolicy(jitter="bogus")
    with pytest.raises(ValueError):
        RetryPolicy(initial=10, maximum=1)


def test_delay_steps_cover_every_delay():
    p = RetryPolicy()
    steps = p.delay_steps()
    assert steps[0] == 1.0 and steps[-1] == 300.0 and steps == sorted(steps)
    assert len(steps) < 25
    for a, b in zip(steps, steps[1:]):
        assert b / a <= 2 ** 0.5 + 1e-3 or b == 300.0


def _client_error(code, status, op="GetObject"):
    from botocore.exceptions import ClientError
    return ClientError({"Error": {"Code": code, "Message": code},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, op)


@pytest.mark.parametrize("exc,stage,kind", [
    (InputError("corrupt"), "transcode", PERMANENT),
    (LadderError("bad ladder"), None, PERMANENT),
    (FileNotFoundError("src.mp4"), "pull", PERMANENT),
    (EncodeError("out of memory"), "transcode", TRANSIENT),
    (OutputError("disk full"), "transcode", TRANSIENT),
    (ConnectionResetError("reset"), "pull", DEPENDENCY),
    (TimeoutError("timed out"), "upload", DEPENDENCY),
    (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "pull", DEPENDENCY),
    (RuntimeError("something new"), "transcode", TRANSIENT),
])
def test_classify_basic(exc, stage, kind):
    assert classify(exc, stage) == kind


@pytest.mark.parametrize("code,status,kind", [
    ("NoSuchKey", 404, PERMANENT), ("404", 404, PERMANENT), ("NoSuchBucket", 404, PERMANENT),
    ("SlowDown", 503, DEPENDENCY), ("ServiceUnavailable", 503, DEPENDENCY),
    ("RequestTimeout", 400, DEPENDENCY), ("InternalError", 500, DEPENDENCY),
    ("", 502, DEPENDENCY), ("TooManyRequestsException", 429, DEPENDENCY),
    ("AccessDenied", 403, PERMANENT), ("InvalidAccessKeyId", 403, DEPENDENCY),
    ("InvalidRange", 416, PERMANENT), ("BadDigest", 400, TRANSIENT),
])
def test_classify_s3(code, status, kind):
    assert classify(_client_error(code, status), "pull") == kind


def test_classify_botocore_connection_errors():
    from botocore.exceptions import (ConnectionClosedError, EndpointConnectionError,
                                     ReadTimeoutError)
    assert classify(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), "pull") == DEPENDENCY
    assert classify(ReadTimeoutError(endpoint_url="http://x"), "upload") == DEPENDENCY
    assert classify(ConnectionClosedError(endpoint_url="http://x"), "upload") == DEPENDENCY


def test_classify_reads_the_chain():
    from boto3.exceptions import S3UploadFailedError
    try:
        try:
            raise _client_error("SlowDown", 503, "UploadPart")
        except Exception as e:
            raise S3UploadFailedError(f"Failed to upload: {e}")
    except S3UploadFailedError as wrapped:
        assert classify(wrapped, "upload") == DEPENDENCY
    # A dependency outage wins even when wrapped in an otherwise-transient error.
    try:
        try:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "refused")
        except OSError as e:
            raise OutputError("upload failed") from e
    except OutputError as wrapped:
        assert classify(wrapped, "upload") == DEPENDENCY


def test_classify_database_errors():
    import sqlalchemy
    from sqlalchemy.exc import OperationalError
    refused = OperationalError("select 1", {}, Exception(
        'connection to server at "127.0.0.1", port 1 failed: Connection refused'))
    dropped = OperationalError("select 1", {}, Exception(
        "server closed the connection unexpectedly"))
    assert classify(refused) == DEPENDENCY
    assert classify(dropped) == DEPENDENCY
    # A real connection attempt to a closed port.
    engine = sqlalchemy.create_engine("postgresql+psycopg://u@127.0.0.1:1/x",
                                      connect_args={"connect_timeout": 2})
    with pytest.raises(Exception) as info:
        engine.connect()
    assert classify(info.value) == DEPENDENCY


def test_classify_broker_errors():
    import pika
    from pika.exceptions import AMQPConnectionError, StreamLostError
    assert classify(StreamLostError("Transport indicated EOF")) == DEPENDENCY
    with pytest.raises(AMQPConnectionError) as info:
        pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 1,
                                                          connection_attempts=1,
                                                          socket_timeout=1))
    assert classify(info.value) == DEPENDENCY   # refused: the broker is down


def test_the_previous_backoff_comes_from_the_task_events(tmp_path):
    """Decorrelated jitter needs the delay before the failed attempt: the task's latest
    scheduled retry, deferrals (outages) left out."""
    from framepress.config import Settings
    from framepress.service.db import connect
    from framepress.service.tasks import EventKind, TaskStore
    store = TaskStore(connect(Settings.from_env({}, data_dir=str(tmp_path))), lease_seconds=30)
    tid = store.create("s3://b/k.mp4", "s3://b/out", {"name": "x", "rungs": []})
    assert store.last_retry_delay(tid) is None
    for data in ({"delay_s": 3.5}, {"delay_s": 0.25, "deferred": True}):
        lease = store.take(tid, "w1", {}).lease
        store.fail(lease, status="retry_wait", error_event={"stage": "pull", "message": "x"},
                   follow_up={"kind": EventKind.RETRY_SCHEDULED, "stage": "pull", "data": data})
    assert store.last_retry_delay(tid) == 3.5
