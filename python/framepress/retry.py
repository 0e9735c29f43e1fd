"""Retry policy and error classification for tasks.

Three kinds of failure, handled differently by the worker:

- ``permanent``: the task itself is bad (corrupt media, invalid ladder, missing source). Retrying
  cannot help, so it is escalated at once.
- ``transient``: this attempt failed (network blip, S3 5xx/throttling, broker or DB disconnect,
  encoder resources). Retried with exponential backoff and jitter, counted against max_attempts.
- ``dependency``: a dependency is down (S3 endpoint refusing connections, DB unreachable). The
  task is not at fault, so the attempt is not counted; a circuit breaker pauses consuming instead.
"""
from __future__ import annotations

import errno
import random
from dataclasses import dataclass, field
from typing import Iterator, Optional

from .errors import Cancelled, FramepressError, InputError, LadderError

TRANSIENT = "transient"
PERMANENT = "permanent"
DEPENDENCY = "dependency"

JITTERS = ("full", "decorrelated", "none")


@dataclass
class RetryPolicy:
    """Exponential backoff: attempt n (1-based, the attempt that just failed) waits about
    ``initial * factor**(n-1)`` seconds, capped at ``maximum``, with jitter."""

    initial: float = 2.0
    factor: float = 2.0
    maximum: float = 300.0
    max_attempts: int = 5
    jitter: str = "full"
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.jitter not in JITTERS:
            raise ValueError(f"jitter must be one of {JITTERS}, not {self.jitter!r}")
        if self.initial <= 0 or self.factor < 1 or self.maximum < self.initial:
            raise ValueError("need initial > 0, factor >= 1 and maximum >= initial")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    @classmethod
    def from_settings(cls, settings, **overrides) -> "RetryPolicy":
        """The policy of resolved `Settings` (FRAMEPRESS_RETRY_* and FRAMEPRESS_MAX_ATTEMPTS);
        overrides win."""
        kw = dict(initial=settings.retry_initial, factor=settings.retry_factor,
                  maximum=settings.retry_max, max_attempts=settings.max_attempts,
                  jitter=settings.retry_jitter)
        kw.update(overrides)
        return cls(**kw)

    def base_delay(self, attempt: int) -> float:
        """The un-jittered delay after failed attempt `attempt` (1-based)."""
        attempt = max(1, attempt)
        # Cap the exponent so huge attempt numbers cannot overflow a float.
        exp = min(attempt - 1, 64)
        return min(self.maximum, self.initial * self.factor ** exp)

    def delay_for(self, attempt: int, previous: Optional[float] = None) -> float:
        """Seconds to wait before retrying after failed attempt `attempt`.

        full: uniform(0, base) (AWS "full jitter"), floored at the smallest delay step so a retry
        never comes back instantly. decorrelated: uniform(initial, 3 * previous), capped.
        """
        base = self.base_delay(attempt)
        if self.jitter == "none":
            return base
        if self.jitter == "full":
            return max(self.min_delay, self.rng.uniform(0.0, base))
        prev = previous if previous and previous > 0 else self.initial
        return min(self.maximum, self.rng.uniform(self.initial, max(self.initial, prev * 3)))

    def exhausted(self, attempts: int) -> bool:
        """True when `attempts` failed attempts use up the budget."""
        return attempts >= self.max_attempts

    @property
    def min_delay(self) -> float:
        return self.initial / 2

    def delay_steps(self) -> list[float]:
        """The delays (seconds) the broker holds messages for: one delay queue per step.

        A geometric ladder from initial/2 to maximum with ratio sqrt(factor), so a jittered delay
        rounded up to the next step is at most ~41 % (for factor 2) longer than asked.
        """
        ratio = max(self.factor ** 0.5, 1.25)
        steps, k = [], 0
        while self.min_delay * ratio ** k < self.maximum:
            steps.append(round(self.min_delay * ratio ** k, 3))
            k += 1
        steps.append(round(self.maximum, 3))
        return sorted(set(steps))


# --- classification --------------------------------------------------------------------------

# S3 error codes that mean "try again later".
_S3_TRANSIENT_CODES = {"SlowDown", "RequestTimeout", "Throttling", "ThrottlingException",
                       "ServiceUnavailable", "InternalError", "RequestTimeTooSkewed",
                       "RequestLimitExceeded", "TooManyRequestsException", "OperationAborted"}
_S3_MISSING_CODES = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}
# Bad credentials hit every task alike: treat as the dependency being unusable, not the task.
_S3_AUTH_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                  "InvalidToken", "TokenRefreshRequired"}
_REFUSED_ERRNOS = {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN,
                   errno.ENETDOWN}
# Fragments of driver messages (psycopg, pika, urllib3) that say the server is not there.
_UNREACHABLE_TEXT = ("connection refused", "could not connect", "could not translate host name",
                     "no route to host", "network is unreachable", "name or service not known",
                     "temporary failure in name resolution", "the database system is starting up",
                     "the database system is shutting down", "too many connections")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it was raised from or during, without loops.

    Also the exceptions it carries: pika wraps the socket error in its args
    (AMQPConnectionError(AMQPConnectorSocketConnectError(exception=ConnectionRefusedError))).
    """
    seen: set[int] = set()
    todo = [exc]
    while todo:
        exc = todo.pop(0)
        if exc is None or id(exc) in seen:
            continue
        seen.add(id(exc))
        yield exc
        nested = [a for a in exc.args if isinstance(a, BaseException)]
        inner = getattr(exc, "exception", None)
        if isinstance(inner, BaseException):
            nested.append(inner)
        todo.extend(nested + [exc.__cause__ or exc.__context__])


def _client_error_codes(exc: BaseException) -> tuple[str, int]:
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


def _classify_one(exc: BaseException, stage: Optional[str]) -> Optional[str]:
    """The verdict for one exception of a chain, or None to look further down the chain."""
    if isinstance(exc, (InputError, LadderError, Cancelled)):
        return PERMANENT
    if isinstance(exc, FileNotFoundError):
        # A missing source never appears by waiting; a missing scratch path elsewhere might.
        return PERMANENT if stage in (None, "pull") else TRANSIENT
    if isinstance(exc, OSError) and exc.errno in _REFUSED_ERRNOS:
        return DEPENDENCY
    if isinstance(exc, ConnectionRefusedError):
        return DEPENDENCY

    if _is_type(exc, "botocore", ("ClientError",)):
        code, status = _client_error_codes(exc)
        if code in _S3_MISSING_CODES or status == 404:
            return PERMANENT
        if code in _S3_AUTH_CODES:
            return DEPENDENCY
        if code in _S3_TRANSIENT_CODES or status in (429, 500, 502, 503, 504) or status >= 500:
            return TRANSIENT
        if code in ("AccessDenied", "InvalidObjectState", "InvalidRange") or 400 <= status < 500:
            return PERMANENT
        return TRANSIENT
    if _is_type(exc, "botocore", ("EndpointConnectionError", "ConnectTimeoutError",
                                  "ProxyConnectionError", "NoCredentialsError")):
        return DEPENDENCY
    if _is_type(exc, "botocore", ("ConnectionClosedError", "ReadTimeoutError",
                                  "ResponseStreamingError", "IncompleteReadError",
                                  "HTTPClientError", "ChecksumError")):
        return TRANSIENT

    text = f"{exc} {exc!r}".lower()
    if _is_type(exc, "sqlalchemy", ("OperationalError", "InterfaceError", "DisconnectionError")) \
            or _is_type(exc, "psycopg", ("OperationalError", "InterfaceError")):
        return DEPENDENCY if any(t in text for t in _UNREACHABLE_TEXT) else TRANSIENT
    if _is_type(exc, "pika", ("AMQPConnectionError", "AMQPChannelError", "ConnectionClosed",
                              "StreamLostError", "ChannelClosed", "ConnectionWrongStateError",
                              "ChannelWrongStateError", "UnroutableError", "NackError")):
        return DEPENDENCY if any(t in text for t in _UNREACHABLE_TEXT) else TRANSIENT

    if isinstance(exc, FramepressError):
        return TRANSIENT if exc.transient else PERMANENT
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return TRANSIENT
    return None


def classify(exc: BaseException, stage: Optional[str] = None) -> str:
    """"transient" | "permanent" | "dependency" for an exception raised in `stage`
    (pull | transcode | upload | None).

    The whole cause/context chain is read: a dependency outage anywhere in it wins (the task is
    not at fault even when wrapped, say, in an OutputError); otherwise the first decisive link,
    so boto3's S3UploadFailedError is judged by the ClientError it was raised from. Unknown errors
    are transient: they get the retry budget and are escalated when it runs out.
    """
    verdicts = [v for v in (_classify_one(link, stage) for link in _chain(exc)) if v]
    if DEPENDENCY in verdicts:
        return DEPENDENCY
    return verdicts[0] if verdicts else TRANSIENT
