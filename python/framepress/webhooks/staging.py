"""Deliveries staged in the transaction that changes a task's status: both commit, or neither."""
from __future__ import annotations

import json
import uuid
from typing import Optional

from sqlalchemy.orm import Session

from framepress.service.db import Task, WebhookDelivery, db_now, now_of
from framepress.webhooks.subscriptions import EVENT_TYPES, Subscriptions

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


def new_id() -> str:
    return "msg_" + uuid.uuid4().hex


def stage_status(s: Session, task_id: str, subscriptions: Optional[Subscriptions]) -> list[str]:
    """Stage the event of the task's new status (read in `s`) for each subscriber; returns the
    delivery ids (none when the status is not announced or nobody subscribes)."""
    from framepress.service.tasks import status_json
    s.flush()
    t = s.get(Task, task_id, populate_existing=True)
    if t is None or t.status not in EVENT_TYPES or getattr(t, "parent_id", None):
        return []           # a split task's chunks are announced through their parent
    event_type = EVENT_TYPES[t.status]
    targets = (subscriptions or Subscriptions()).targets(event_type, (t.options or {}).get("webhook"))
    if not targets:
        return []
    body = json.dumps({"type": event_type, "timestamp": now_of(s).isoformat(),
                       "data": status_json(s, t)}, default=str, separators=(",", ":"))
    ids = []
    for name, url in targets:
        ids.append(new_id())
        s.add(WebhookDelivery(id=ids[-1], task_id=task_id, event_type=event_type,
                              subscription=name, url=url, body=body, status=PENDING, attempts=0,
                              next_attempt_at=db_now(), created_at=db_now()))
    s.flush()
    return ids


__all__ = ["stage_status", "new_id", "PENDING", "DELIVERED", "FAILED"]
