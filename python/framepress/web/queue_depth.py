"""How many task messages wait: the local queue's rows, or RabbitMQ's count (a passive declare,
which creates nothing and needs no rights beyond reading the queue)."""
from __future__ import annotations

from typing import Any, Optional

from framepress.config import Settings


def depth(settings: Settings, broker: Any) -> Optional[dict[str, Any]]:
    """{"queue", "messages", "consumers"}; None when the broker does not answer."""
    queue = settings.queue_name()
    if hasattr(broker, "depth"):                        # the local, database-backed queue
        return {"queue": queue, "messages": broker.depth(queue), "consumers": None}
    import pika
    params = pika.URLParameters(settings.broker_url or "")
    params.connection_attempts, params.socket_timeout, params.blocked_connection_timeout = 1, 3, 3
    try:
        conn = pika.BlockingConnection(params)
    except pika.exceptions.AMQPError:
        return None
    try:
        ok = conn.channel().queue_declare(queue=queue, passive=True).method
        return {"queue": queue, "messages": ok.message_count, "consumers": ok.consumer_count}
    except pika.exceptions.AMQPError:                   # not declared yet: no worker ever ran
        return {"queue": queue, "messages": 0, "consumers": 0}
    finally:
        if conn.is_open:
            conn.close()


__all__ = ["depth"]
