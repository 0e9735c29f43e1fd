"""The console's writes, shared by the JSON API and the pages: the same operator actions as
`framepress tasks retry|resolve|cancel` and `framepress submit`, recorded as done by the console."""
from __future__ import annotations

from typing import Any

from framepress.errors import InputError
from framepress.ladder import BUILTIN_LADDERS
from framepress.service import admin
from framepress.web.context import Console

ACTOR = "console"


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true", "yes", "on")


def retry(c: Console, task_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    return admin.retry(c.db, c.broker, task_id, reset_attempts=_flag(fields.get("reset_attempts")),
                       actor=ACTOR, note=str(fields.get("note") or ""))


def resolve(c: Console, task_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    return admin.resolve(c.db, task_id, str(fields.get("note") or ""), actor=ACTOR,
                         webhooks=c.webhooks)


def cancel(c: Console, task_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    return admin.cancel(c.db, task_id, reason=str(fields.get("reason") or fields.get("note") or ""),
                        actor=ACTOR, webhooks=c.webhooks)


ACTIONS = {"retry": retry, "resolve": resolve, "cancel": cancel}


def submit(c: Console, fields: dict[str, Any]) -> dict[str, Any]:
    from framepress.client import Client
    source = fields.get("source_uri")
    if not source or not isinstance(source, str):
        raise InputError("source_uri is required")
    try:
        priority = int(fields.get("priority") or 0)
    except (TypeError, ValueError):
        raise InputError("priority must be an integer") from None
    ladder = fields.get("ladder") or "default"
    if not isinstance(ladder, dict) and ladder not in BUILTIN_LADDERS:
        # A name the server would read as a file path: not from a request.
        raise InputError(f"ladder must be a built-in name ({', '.join(BUILTIN_LADDERS)}) or "
                         f"a ladder object")
    client = Client(c.settings, db=c.db, broker=c.broker)
    task_id = client.submit(source, fields.get("output_uri") or None, ladder=ladder,
                            priority=priority,
                            webhook=fields.get("webhook") or None)
    return {"task_id": task_id}


__all__ = ["ACTIONS", "submit", "retry", "resolve", "cancel"]
