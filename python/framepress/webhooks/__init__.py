"""Signed webhooks on task events (the Standard Webhooks spec).

A task that succeeds, escalates, fails or is cancelled has its event staged, in the transaction
that changes its status, as one delivery per subscriber (`staging`): the task's own URL
(`framepress submit --webhook URL`), the global one (`FRAMEPRESS_WEBHOOK_URL`) and, for
escalations, `FRAMEPRESS_ESCALATION_WEBHOOK`. Dispatchers (every worker and console runs one)
POST them signed (`signing`), record every attempt and retry with backoff (`dispatcher`).
"""
from framepress.webhooks.subscriptions import EVENT_TYPES, Subscriptions

__all__ = ["EVENT_TYPES", "Subscriptions"]
