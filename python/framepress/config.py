"""Service settings: one dataclass read from `FRAMEPRESS_*` environment variables.

Every field is also a CLI flag on the service commands (the flag wins over the environment).
Defaults give embedded mode: a SQLite file, the local database-backed queue and local files, so
nothing needs to be running. Production sets a `postgresql://` database and an `amqp://` broker.
"""
from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping, Optional
from urllib.parse import urlsplit, urlunsplit

from framepress.service.failure.backoff import JITTERS, RetryPolicy

ENV_PREFIX = "FRAMEPRESS_"
LOCAL_BROKER = "local"
TASKS_QUEUE = "framepress.tasks"


def _default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "framepress")


def _opt(help: str, *, type: Any = str, choices: tuple[str, ...] = ()) -> Any:
    """A settings field with what its CLI flag needs."""
    return field(default=None, metadata={"help": help, "type": type, "choices": choices})


@dataclass(frozen=True)
class Settings:
    # Fields default to None here and are filled by `resolve()`, so "not given" stays visible.
    database_url: Optional[str] = _opt("Database URL: postgresql://user@host:5432/db or sqlite:///path "
                                       "(default: a SQLite file in the data dir)")
    broker_url: Optional[str] = _opt("Broker: amqp://user:pass@host:5672/vhost, or 'local' for the "
                                     "database-backed queue (default)")
    data_dir: Optional[str] = _opt("Embedded-mode data directory (SQLite file, local outputs)")
    output_uri: Optional[str] = _opt("Default output location (s3://bucket/prefix or file:///dir)")
    scratch_dir: Optional[str] = _opt("Where per-task scratch directories are made")
    queue_prefix: Optional[str] = _opt("Prefix for queue names (isolates test runs)")
    hwaccel: Optional[str] = _opt("Engine hardware acceleration", choices=("auto", "cpu", "cuda"))
    max_attempts: Optional[int] = _opt("Attempts per task before it is escalated", type=int)
    heartbeat_seconds: Optional[float] = _opt("Worker heartbeat interval", type=float)
    lease_seconds: Optional[float] = _opt("How long a task lease lasts without a heartbeat", type=float)
    metrics_port: Optional[int] = _opt("Port for /metrics, /healthz, /readyz (0 disables)", type=int)
    log_format: Optional[str] = _opt("Log line format", choices=("text", "json"))
    log_level: Optional[str] = _opt("Log level", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    upload_concurrency: Optional[int] = _opt("Parallel uploads per task", type=int)
    allow_file_uris: Optional[bool] = _opt("Allow file:// sources and outputs (default: only with "
                                           "the local broker)", type=bool)
    # Failure rules (framepress.service.failure).
    retry_initial: Optional[float] = _opt("Backoff after the first failed attempt, seconds",
                                          type=float)
    retry_factor: Optional[float] = _opt("Backoff growth per attempt", type=float)
    retry_max: Optional[float] = _opt("Longest backoff, seconds", type=float)
    retry_jitter: Optional[str] = _opt("Backoff jitter", choices=JITTERS)
    escalation_webhook: Optional[str] = _opt("URL to POST escalation notices to (default: none)")
    engine_stuck_seconds: Optional[float] = _opt("Seconds a task may go without progress before "
                                                 "/healthz fails (0: never)", type=float)
    drain_timeout: Optional[float] = _opt("Seconds a draining worker waits for its task before "
                                          "cancelling it (0: no limit)", type=float)
    breaker_threshold: Optional[int] = _opt("Consecutive failures that open a circuit breaker",
                                            type=int)
    breaker_probe_seconds: Optional[float] = _opt("First probe interval of an open breaker",
                                                  type=float)
    breaker_max_probe_seconds: Optional[float] = _opt("Longest probe interval of an open breaker",
                                                      type=float)
    worker_reaper: Optional[bool] = _opt("Run the reaper thread in the worker", type=bool)
    worker_timeout: Optional[float] = _opt("Heartbeat silence before a worker is lost (default: "
                                           "3 heartbeats, at least the lease time)", type=float)
    max_task_seconds: Optional[float] = _opt("Cancel a task running longer than this; keep it "
                                             "below RabbitMQ's consumer_timeout (0: no limit)",
                                             type=float)
    task_deadline: Optional[float] = _opt("Seconds after submission past which a task that an "
                                          "outage keeps deferring is escalated (default: 24 h)",
                                          type=float)
    # Webhooks (framepress.webhooks) and the console (framepress.web).
    webhook_url: Optional[str] = _opt("Global webhook subscription: every task's events are POSTed "
                                      "here (default: none)")
    webhook_secret: Optional[str] = _opt("Webhook signing secret, whsec_<base64> (Standard Webhooks); "
                                         "needed to deliver any webhook")
    webhook_timeout: Optional[float] = _opt("Seconds a webhook receiver has to answer", type=float)
    webhook_max_attempts: Optional[int] = _opt("POSTs of one webhook delivery before it is given up",
                                               type=int)
    webhook_retry_max: Optional[float] = _opt("Longest wait between two POSTs of a webhook, seconds",
                                              type=float)
    admin_token: Optional[str] = _opt("The console's admin credential (Bearer token, or the login "
                                      "password); without it the console refuses everything")
    web_port: Optional[int] = _opt("Port of `framepress web`", type=int)
    web_open_reads: Optional[bool] = _opt("Let the console's pages and GET API answer without the "
                                          "admin credential (actions still need it)", type=bool)
    # Split tasks (framepress.service.split).
    split_seconds: Optional[float] = _opt("Split sources longer than this many seconds into chunk "
                                          "tasks that workers transcode in parallel (0: never)",
                                          type=float)
    chunk_seconds: Optional[float] = _opt("About how long each chunk of a split task is, seconds "
                                          "(rounded to whole HLS segments)", type=float)

    # ---- construction -------------------------------------------------------------------------

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None, **overrides: Any) -> "Settings":
        """Environment first, then `overrides` (CLI flags; None means not given), then defaults."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw not in (None, ""):
                values[f.name] = _parse(raw, f.metadata["type"], f.name)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values).resolve()

    def resolve(self) -> "Settings":
        data_dir = self.data_dir or _default_data_dir()
        broker = self.broker_url or LOCAL_BROKER
        return replace(
            self,
            data_dir=data_dir,
            database_url=self.database_url or f"sqlite:///{os.path.join(data_dir, 'framepress.db')}",
            broker_url=broker,
            output_uri=self.output_uri or Path(data_dir, "outputs").absolute().as_uri(),
            scratch_dir=self.scratch_dir or os.environ.get("TMPDIR") or "/tmp",
            queue_prefix=self.queue_prefix or "",
            hwaccel=self.hwaccel or "auto",
            max_attempts=5 if self.max_attempts is None else self.max_attempts,
            heartbeat_seconds=self.heartbeat_seconds or 5.0,
            lease_seconds=self.lease_seconds or 60.0,
            metrics_port=9100 if self.metrics_port is None else self.metrics_port,
            log_format=self.log_format or "text",
            log_level=self.log_level or "INFO",
            upload_concurrency=self.upload_concurrency or 8,
            allow_file_uris=(broker == LOCAL_BROKER) if self.allow_file_uris is None
            else self.allow_file_uris,
            retry_initial=_given(self.retry_initial, RetryPolicy.initial),
            retry_factor=_given(self.retry_factor, RetryPolicy.factor),
            retry_max=_given(self.retry_max, RetryPolicy.maximum),
            retry_jitter=self.retry_jitter or RetryPolicy.jitter,
            engine_stuck_seconds=_given(self.engine_stuck_seconds, 300.0),
            drain_timeout=_given(self.drain_timeout, 0.0),
            breaker_threshold=_given(self.breaker_threshold, 3),
            breaker_probe_seconds=_given(self.breaker_probe_seconds, 2.0),
            breaker_max_probe_seconds=_given(self.breaker_max_probe_seconds, 30.0),
            worker_reaper=_given(self.worker_reaper, True),
            # escalation_webhook stays None (no hook); worker_timeout None is derived from the
            # heartbeat and lease where used (`worker_timeout`).
            max_task_seconds=_given(self.max_task_seconds, 1740.0),
            task_deadline=_given(self.task_deadline, 24 * 3600.0),
            webhook_timeout=_given(self.webhook_timeout, 10.0),
            webhook_max_attempts=_given(self.webhook_max_attempts, 20),
            webhook_retry_max=_given(self.webhook_retry_max, 600.0),
            web_port=_given(self.web_port, 8080),
            web_open_reads=_given(self.web_open_reads, False),
            split_seconds=_given(self.split_seconds, 0.0),
            chunk_seconds=_given(self.chunk_seconds, 30.0),
        )

    def with_(self, **changes: Any) -> "Settings":
        return replace(self, **changes).resolve()

    # ---- derived values -----------------------------------------------------------------------

    @property
    def embedded(self) -> bool:
        return self.broker_url == LOCAL_BROKER

    @property
    def sqlalchemy_url(self) -> str:
        return sqlalchemy_url(self.database_url or "")

    def queue_name(self, suffix: str = "") -> str:
        """`framepress.tasks`, `framepress.tasks.dead`, ... with the isolation prefix applied."""
        return f"{self.queue_prefix}{TASKS_QUEUE}{suffix}"

    def redacted(self) -> dict[str, Any]:
        """For logs: URLs without their passwords, the webhook without its path (tokens)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in ("database_url", "broker_url"):
            out[key] = redact_url(out[key])
        for key in ("escalation_webhook", "webhook_url"):
            out[key] = redact_webhook(out[key])
        for key in ("webhook_secret", "admin_token"):
            out[key] = "***" if out[key] else out[key]
        return out


def worker_timeout(settings: Settings) -> float:
    """Heartbeat silence before a worker is lost: the setting, else 3 heartbeats (at least the
    lease, so a lease is never taken over while its worker may still be alive)."""
    hb = settings.heartbeat_seconds or 5.0
    return settings.worker_timeout or max(3 * hb, settings.lease_seconds or 60.0)


def _given(value: Any, default: Any) -> Any:
    """`value` unless not given; 0 and False are real values here."""
    return default if value is None else value


def _parse(raw: str, typ: Any, name: str) -> Any:
    try:
        if typ is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        return typ(raw)
    except ValueError:
        raise ValueError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {typ.__name__}") from None


def sqlalchemy_url(url: str) -> str:
    """Users write `postgresql://…`; the driver we ship is psycopg 3."""
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def redact_url(url: Optional[str]) -> Optional[str]:
    if not url or "@" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def redact_webhook(url: Optional[str]) -> Optional[str]:
    """scheme://host[:port] only: webhook URLs carry their token in the path or query."""
    if not url:
        return url
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    hidden = "/***" if (parts.path.strip("/") or parts.query or parts.username) else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{hidden}"


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


__all__ = ["Settings", "worker_timeout", "sqlalchemy_url", "redact_url", "redact_webhook", "new_worker_id",
           "LOCAL_BROKER"]
