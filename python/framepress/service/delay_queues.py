"""Broker-held retry delays: one delay queue per backoff step.

RabbitMQ expires messages only at the head of a queue, so per-message TTLs in a single delay queue
would let a 5-minute message block a 2-second one behind it. Instead each step gets its own queue
(``<main>.retry.<ms>``) whose every message has the same TTL (``x-message-ttl``), so expiry order
is arrival order; an expired message is dead-lettered through the default exchange straight back
into the main queue. Nobody consumes the delay queues, and the worker is free meanwhile.

Quorum delay queues use at-least-once dead-lettering (RabbitMQ >= 3.10), so a message is not lost
if the broker fails while moving it back.
"""
from __future__ import annotations

import bisect
from typing import Iterable, Optional, Sequence

import pika

from framepress.service.failure.backoff import RetryPolicy

DEFAULT_MAIN_QUEUE = "framepress.tasks"


def delay_queue_name(main_queue: str, delay_ms: int) -> str:
    return f"{main_queue}.retry.{int(delay_ms)}"


def steps_ms(policy_or_steps: "RetryPolicy | Iterable[float]") -> list[int]:
    """Delay steps in whole milliseconds, ascending, from a policy or a list of seconds."""
    steps = (policy_or_steps.delay_steps() if isinstance(policy_or_steps, RetryPolicy)
             else policy_or_steps)
    return sorted({max(1, int(round(s * 1000))) for s in steps})


def delay_queue_arguments(main_queue: str, delay_ms: int, queue_type: str = "quorum") -> dict:
    args = {
        "x-message-ttl": int(delay_ms),
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": main_queue,
        "x-queue-type": queue_type,
    }
    if queue_type == "quorum":
        # At-least-once dead-lettering needs reject-publish overflow (RabbitMQ docs).
        args["x-dead-letter-strategy"] = "at-least-once"
        args["x-overflow"] = "reject-publish"
    return args


class DelayQueues:
    """The delay topology of one main queue: which queue holds which delay."""

    def __init__(self, main_queue: str = DEFAULT_MAIN_QUEUE,
                 policy: "RetryPolicy | Sequence[float] | None" = None,
                 queue_type: str = "quorum") -> None:
        if queue_type not in ("quorum", "classic"):
            raise ValueError("queue_type must be 'quorum' or 'classic'")
        self.main_queue = main_queue
        self.queue_type = queue_type
        self.steps_ms = steps_ms(policy if policy is not None else RetryPolicy())

    def step_for(self, delay_s: float) -> int:
        """The smallest step (ms) at or above `delay_s`; the largest one if none is."""
        need = int(round(max(0.0, delay_s) * 1000))
        i = bisect.bisect_left(self.steps_ms, need)
        return self.steps_ms[min(i, len(self.steps_ms) - 1)]

    def queue_for(self, delay_s: float) -> str:
        return delay_queue_name(self.main_queue, self.step_for(delay_s))

    def declare(self, channel) -> list[str]:
        """Declare every delay queue (idempotent: same name, same arguments). Returns names."""
        names = []
        for ms in self.steps_ms:
            name = delay_queue_name(self.main_queue, ms)
            channel.queue_declare(queue=name, durable=True,
                                  arguments=delay_queue_arguments(self.main_queue, ms,
                                                                  self.queue_type))
            names.append(name)
        return names

    def publish(self, channel, body: bytes, delay_s: float,
                headers: Optional[dict] = None) -> tuple[str, int]:
        """Park `body` for at least `delay_s` seconds; returns (queue, step ms).

        Persistent and, when the channel is in confirm mode, confirmed: pika's BlockingChannel
        raises if the broker nacks or cannot route it, so the caller acks the original delivery
        only after the delayed copy is safe.
        """
        ms = self.step_for(delay_s)
        queue = delay_queue_name(self.main_queue, ms)
        props = pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                     headers=dict(headers or {}))
        channel.basic_publish(exchange="", routing_key=queue, body=body, properties=props,
                              mandatory=True)
        return queue, ms
