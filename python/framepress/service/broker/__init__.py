"""Brokers behind one interface: RabbitMQ (`amqp://…`) or the database-backed local queue."""
from __future__ import annotations

from typing import Optional

from framepress.config import Settings
from framepress.service.errors import ConfigError
from framepress.service.broker.base import Broker, Delivery, Handler


def open_broker(settings: Settings, db=None) -> Broker:
    tasks_q, dead_q = settings.queue_name(), settings.queue_name(".dead")
    url = settings.broker_url or "local"
    if url == "local":
        if db is None:
            from framepress.service.db import connect
            db = connect(settings)
        from framepress.service.broker.local import LocalBroker
        return LocalBroker(db, tasks_q, dead_q)
    if url.startswith(("amqp://", "amqps://")):
        from framepress.service.failure.backoff import RetryPolicy
        from framepress.service.broker.rabbitmq import RabbitBroker
        return RabbitBroker(url, tasks_q, dead_q, retry=RetryPolicy.from_settings(settings))
    raise ConfigError(f"broker URL must be amqp://… or 'local', not {url.split('://')[0]}://…")


__all__ = ["Broker", "Delivery", "Handler", "open_broker"]
