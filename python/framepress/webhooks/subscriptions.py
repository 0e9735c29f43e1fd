"""Who gets which task event: the task's own URL, the global subscription, the escalation hook."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

from framepress.errors import InputError
from framepress.service.db import TaskStatus

#: The statuses that are announced, and their event types.
EVENT_TYPES = {TaskStatus.SUCCEEDED: "task.succeeded", TaskStatus.ESCALATED: "task.escalated",
               TaskStatus.FAILED: "task.failed", TaskStatus.CANCELLED: "task.cancelled"}

TASK, GLOBAL, ESCALATION = "task", "global", "escalation"


def check_url(url: str) -> str:
    """A webhook URL must be absolute http(s)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"a webhook URL must be http:// or https:// with a host, not {url!r}")
    return url


@dataclass(frozen=True)
class Subscriptions:
    """The settings' subscriptions; a task's own URL comes from its options (`webhook`)."""
    global_url: Optional[str] = None
    escalation_url: Optional[str] = None

    @classmethod
    def from_settings(cls, settings) -> "Subscriptions":
        return cls(global_url=settings.webhook_url, escalation_url=settings.escalation_webhook)

    def targets(self, event_type: str, task_url: Optional[str]) -> list[tuple[str, str]]:
        """(subscription, url) pairs for one event; a URL subscribed twice gets it once."""
        out: list[tuple[str, str]] = []
        for name, url, wanted in ((TASK, task_url, True), (GLOBAL, self.global_url, True),
                                  (ESCALATION, self.escalation_url,
                                   event_type == EVENT_TYPES[TaskStatus.ESCALATED])):
            if url and wanted and url not in (u for _, u in out):
                out.append((name, url))
        return out


__all__ = ["EVENT_TYPES", "Subscriptions", "check_url", "TASK", "GLOBAL", "ESCALATION"]
