"""Submitting tasks and reading their state: `framepress submit/status/tasks` and scripts.

    from framepress import client
    task_id = client.submit("s3://in/clip.mp4", "s3://out/renditions", ladder="default")
    client.status(task_id)          # the `framepress status --json` shape (DESIGN §3)

A submit validates the ladder first (an invalid one raises `LadderError` and creates nothing),
inserts the task row and stages its message in one transaction (`outbox`), then publishes it
with publisher confirms. If the broker is away the submit still succeeds: the message waits in
the outbox and a worker's relay publishes it once the broker answers.
"""
from __future__ import annotations

import logging
from typing import Any, Optional

from framepress.service.broker import Broker, open_broker
from framepress.config import Settings
from framepress.service.db import Database, connect
from framepress.ladder import LadderLike, load_ladder
from framepress.service.outbox import Relay
from framepress.service.storage import check_uri
from framepress.service.tasks import TaskStore
from framepress.webhooks.subscriptions import check_url as check_webhook_url

log = logging.getLogger("framepress.client")


class Client:
    def __init__(self, settings: Optional[Settings] = None, *, db: Optional[Database] = None,
                 broker: Optional[Broker] = None):
        self.settings = settings or Settings.from_env()
        self.db = db or connect(self.settings)
        self.store = TaskStore(self.db, lease_seconds=self.settings.lease_seconds or 60.0)
        self._broker = broker

    @property
    def broker(self) -> Broker:
        if self._broker is None:
            self._broker = open_broker(self.settings, self.db)   # connects on first publish
        return self._broker

    def submit(self, source_uri: str, output_uri: Optional[str] = None, ladder: LadderLike = "default",
               priority: int = 0, *, options: Optional[dict[str, Any]] = None,
               max_attempts: Optional[int] = None, webhook: Optional[str] = None) -> str:
        """`webhook`: a URL that gets this task's events, signed (`framepress.webhooks`)."""
        lad = load_ladder(ladder)
        if webhook:
            options = {**(options or {}), "webhook": check_webhook_url(webhook)}
        allow = bool(self.settings.allow_file_uris)
        check_uri(source_uri, allow_files=allow)
        output_uri = check_uri(output_uri or self.settings.output_uri or "", allow_files=allow)
        task_id = self.store.create(source_uri, output_uri, lad.to_dict(), priority=priority,
                                    max_attempts=max_attempts or self.settings.max_attempts or 5,
                                    options=options, queue=self.settings.queue_name())
        self.publish_staged(task_id)
        return task_id

    def publish_staged(self, task_id: str) -> bool:
        """Publish what was staged for `task_id` now. With the broker away the message stays in
        the outbox and a worker's relay publishes it once the broker is back: False then."""
        if not Relay(self.db, self.broker).flush(task_id).failed:
            return True
        log.warning("task %s is stored but its message is not published yet (the broker does "
                    "not answer); a worker's relay publishes it when the broker is back", task_id,
                    extra={"task_id": task_id})
        return False

    def status(self, task_id: str) -> Optional[dict[str, Any]]:
        return self.store.status(task_id)

    def list_tasks(self, status: Optional[str] = None, limit: int = 100) -> list[dict[str, Any]]:
        return self.store.list(status=status, limit=limit)

    def close(self) -> None:
        if self._broker is not None:
            self._broker.close()
        self.db.dispose()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def submit(source_uri: str, output_uri: Optional[str] = None, ladder: LadderLike = "default",
           priority: int = 0, settings: Optional[Settings] = None, **kwargs: Any) -> str:
    with Client(settings) as c:
        return c.submit(source_uri, output_uri, ladder, priority, **kwargs)


def status(task_id: str, settings: Optional[Settings] = None) -> Optional[dict[str, Any]]:
    with Client(settings) as c:
        return c.status(task_id)


def list_tasks(status: Optional[str] = None, settings: Optional[Settings] = None,
               limit: int = 100) -> list[dict[str, Any]]:
    with Client(settings) as c:
        return c.list_tasks(status, limit)


__all__ = ["Client", "submit", "status", "list_tasks"]
