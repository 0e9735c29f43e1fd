"""Brokers behind one interface: RabbitMQ (`amqp://…`) or the database-backed local queue."""
from __future__ import annotations

from typing import Optional

from ..config import Settings
from ..service_errors import ConfigError
from .base import Broker, Delivery, Handler


def open_broker(settings: Settings, db=None) -> Broker:
    tasks_q, dead_q = settings.queue_name(), settings.queue_name(".dead")
    url = settings.broker_url or "local"
    if url == "local":
        if db is None:
            from ..db import connect
            db = connect(settings)
        from .local import LocalBroker
        return LocalBroker(db, tasks_q, dead_q)
    if url.startswith(("amqp://", "amqps://")):
        from ..service.failure.backoff import RetryPolicy
        from .rabbitmq import RabbitBroker
        return RabbitBroker(url, tasks_q, dead_q, retry=RetryPolicy.from_settings(settings))
    raise ConfigError(f"broker URL must be amqp://… or 'local', not {url.split('://')[0]}://…")


__all__ = ["Broker", "Delivery", "Handler", "open_broker"]
