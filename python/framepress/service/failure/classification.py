"""Every failure, classified once, here. Three kinds, handled differently by the worker:

- ``dependency`` (an outage): S3, the database or the broker is down or overloaded — connection
  refused or reset, timeouts, HTTP 5xx, SlowDown and other throttling, the database unavailable.
  The task is not at fault: the attempt is given back (none spent), the dependency's circuit
  breaker counts it and the task is deferred, within its deadline.
- ``permanent``: the task itself is bad — corrupt or unsupported media (`InputError`), an invalid
  ladder or URI, a missing source (NoSuchKey, NoSuchBucket), AccessDenied. Retrying cannot help:
  escalated at once.
- ``transient``: this attempt failed for a reason that may not recur (encoder resources, a
  transfer that did not verify, the task's time limit, anything unknown). Retried with backoff,
  counted against max_attempts.

The whole chain of causes is read, so a wrapper never hides the evidence under it: the S3
storage raises `StorageError` *from* botocore's `ClientError`, and the ClientError's code decides.
Across the chain an outage wins over a permanent error, which wins over a transient one.
"""
from __future__ import annotations

import errno
import socket
from typing import Iterator, Optional

from framepress.errors import Cancelled, FramepressError, InputError, LadderError

TRANSIENT = "transient"
PERMANENT = "permanent"
DEPENDENCY = "dependency"

_RANK = {DEPENDENCY: 0, PERMANENT: 1, TRANSIENT: 2}

# S3 answers that mean "down or overloaded, try later" (besides any HTTP 5xx).
_S3_OUTAGE_CODES = {"SlowDown", "RequestTimeout", "Throttling", "ThrottlingException",
                    "ServiceUnavailable", "InternalError", "RequestLimitExceeded",
                    "TooManyRequestsException", "RequestTimeTooSkewed",
                    # Bad or expired credentials hit every task alike: the dependency is unusable,
                    # not the task; the task deadline bounds how long that defers.
                    "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
                    "TokenRefreshRequired"}
_S3_PERMANENT_CODES = {"404", "NoSuchKey", "NoSuchBucket", "NotFound", "AccessDenied",
                       "AllAccessDisabled", "InvalidBucketName", "InvalidObjectState",
                       "InvalidRange", "InvalidURI", "KeyTooLongError"}
_S3_TRANSIENT_CODES = {"OperationAborted", "BadDigest", "IncompleteBody"}

_OUTAGE_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EHOSTUNREACH,
                  errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN, errno.ETIMEDOUT, errno.EPIPE}
# Fragments of driver messages (psycopg, pika, urllib3) that say the server is not there.
_UNREACHABLE_TEXT = ("connection refused", "could not connect", "could not translate host name",
                     "no route to host", "network is unreachable", "name or service not known",
                     "temporary failure in name resolution", "the database system is starting up",
                     "the database system is shutting down", "too many connections",
                     "server closed the connection", "connection reset", "terminating connection",
                     "connection timed out", "timeout expired", "connection is closed",
                     "consuming input failed", "connection to server")
# Postgres SQLSTATE classes: 08 connection exception, 53 insufficient resources, 57 operator
# intervention (shutdown, statement timeout), 58 system error.
_PG_OUTAGE_CLASSES = ("08", "53", "57", "58")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it was raised from or during, without loops.

    Also the exceptions it carries: pika wraps the socket error in its args
    (AMQPConnectionError(AMQPConnectorSocketConnectError(exception=ConnectionRefusedError))),
    SQLAlchemy in `.orig`.
    """
    seen: set[int] = set()
    todo: list[Optional[BaseException]] = [exc]
    while todo:
        link = todo.pop(0)
        if link is None or id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        nested = [a for a in link.args if isinstance(a, BaseException)]
        for attr in ("exception", "orig"):
            inner = getattr(link, attr, None)
            if isinstance(inner, BaseException):
                nested.append(inner)
        todo.extend(nested + [link.__cause__ or link.__context__])


def s3_error_code(exc: BaseException) -> tuple[str, int]:
    """(error code, HTTP status) of a botocore ClientError; ("", 0) for anything else."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return "", 0
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


def _is_type(exc: BaseException, module: str, names: tuple[str, ...]) -> bool:
    """isinstance by name, so classification works without importing optional drivers."""
    for cls in type(exc).__mro__:
        if cls.__module__.startswith(module) and cls.__name__ in names:
            return True
    return False


def _classify_s3(code: str, status: int) -> str:
    if code in _S3_OUTAGE_CODES or status >= 500 or status == 429:
        return DEPENDENCY
    if code in _S3_TRANSIENT_CODES:
        return TRANSIENT
    if code in _S3_PERMANENT_CODES or 400 <= status < 500:
        return PERMANENT
    return TRANSIENT


def _classify_database(exc: BaseException) -> Optional[str]:
    sqlstate = getattr(exc, "sqlstate", None)
    if _is_type(exc, "psycopg", ("OperationalError", "InterfaceError")):
        if not sqlstate or str(sqlstate)[:2] in _PG_OUTAGE_CLASSES:
            return DEPENDENCY      # no SQLSTATE: the client could not reach the server
        return TRANSIENT           # e.g. a deadlock or serialization failure
    if _is_type(exc, "sqlalchemy", ("DisconnectionError", "TimeoutError")):
        return DEPENDENCY          # TimeoutError: no pooled connection came free
    if _is_type(exc, "sqlalchemy", ("OperationalError", "InterfaceError")):
        if getattr(exc, "connection_invalidated", False):
            return DEPENDENCY
        text = f"{exc}".lower()
        return DEPENDENCY if any(t in text for t in _UNREACHABLE_TEXT) else None
    return None


def _classify_one(exc: BaseException, stage: Optional[str]) -> Optional[str]:
    """The verdict of one link of a chain, or None when it says nothing."""
    if isinstance(exc, Cancelled):
        return None                # the worker cancelled it; the reason is recorded elsewhere
    if isinstance(exc, (InputError, LadderError)):
        return PERMANENT
    if _is_type(exc, "botocore", ("ClientError",)):
        return _classify_s3(*s3_error_code(exc))
    if _is_type(exc, "botocore", ("EndpointConnectionError", "ConnectTimeoutError",
                                  "ReadTimeoutError", "ConnectionClosedError",
                                  "ProxyConnectionError", "ResponseStreamingError",
                                  "IncompleteReadError", "NoCredentialsError")):
        return DEPENDENCY
    if _is_type(exc, "botocore", ("HTTPClientError",)):
        return DEPENDENCY
    if _is_type(exc, "urllib3", ("ProtocolError", "NewConnectionError", "TimeoutError")):
        return DEPENDENCY
    database = _classify_database(exc)
    if database is not None:
        return database
    if _is_type(exc, "pika", ("AMQPConnectionError", "ConnectionClosed", "StreamLostError",
                              "ChannelClosed", "ConnectionWrongStateError",
                              "ChannelWrongStateError", "AMQPHeartbeatTimeout")):
        return DEPENDENCY
    if isinstance(exc, FileNotFoundError):
        # A missing source never appears by waiting; a missing scratch path elsewhere might.
        return PERMANENT if stage in (None, "pull") else TRANSIENT
    if isinstance(exc, (ConnectionError, TimeoutError, socket.timeout)):
        return DEPENDENCY
    if isinstance(exc, OSError) and exc.errno in _OUTAGE_ERRNOS:
        return DEPENDENCY
    if isinstance(exc, FramepressError):
        return TRANSIENT if exc.transient else PERMANENT
    return None


def classify(exc: BaseException, stage: Optional[str] = None) -> str:
    """"dependency" | "permanent" | "transient" for an exception raised in `stage`
    (details | pull | transcode | upload | succeed | None). Unknown errors are transient: they
    get the retry budget and are escalated when it runs out."""
    verdicts = [v for v in (_classify_one(link, stage) for link in _chain(exc)) if v]
    return min(verdicts, key=_RANK.__getitem__) if verdicts else TRANSIENT


def dependency_of(exc: BaseException, default: str = "s3") -> str:
    """Which dependency an outage points at: "s3", "database" or "broker"; `default` when the
    chain does not say (e.g. a bare ConnectionRefusedError)."""
    for link in _chain(exc):
        module = type(link).__module__
        name = type(link).__name__
        if module.startswith(("sqlalchemy", "psycopg", "sqlite3")):
            return "database"
        if module.startswith(("botocore", "boto3", "s3transfer")) or name == "StorageError":
            return "s3"
        if module.startswith("pika") or name == "BrokerError":
            return "broker"
    return default
