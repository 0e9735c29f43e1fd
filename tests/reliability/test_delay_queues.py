"""Delay queues against the real RabbitMQ: messages come back to the main queue after ≈ the delay."""
import json
import time

import pytest

from framepress.service.delay_queues import DelayQueues, delay_queue_arguments, delay_queue_name
from framepress.service.failure.backoff import RetryPolicy


def test_step_choice_rounds_up():
    dq = DelayQueues("q", [0.5, 1, 2, 4])
    assert dq.steps_ms == [500, 1000, 2000, 4000]
    assert dq.step_for(0) == 500 and dq.step_for(0.5) == 500 and dq.step_for(0.6) == 1000
    assert dq.step_for(3.9) == 4000 and dq.step_for(100) == 4000   # capped at the largest
    assert dq.queue_for(1.5) == "q.retry.2000"
    assert delay_queue_name("framepress.tasks", 2000) == "framepress.tasks.retry.2000"
    args = delay_queue_arguments("framepress.tasks", 2000)
    assert args["x-message-ttl"] == 2000 and args["x-dead-letter-routing-key"] == "framepress.tasks"
    assert args["x-dead-letter-exchange"] == ""


def test_default_policy_topology():
    dq = DelayQueues(policy=RetryPolicy())
    assert dq.steps_ms[0] == 1000 and dq.steps_ms[-1] == 300_000


def _drain(ch, queue, want, timeout):
    """Collect `want` messages from `queue`, returning (body, seconds-since-t0) pairs."""
    got, t0 = [], time.monotonic()
    while len(got) < want and time.monotonic() - t0 < timeout:
        method, props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            time.sleep(0.05)
            continue
        got.append((json.loads(body), props))
    return got


@pytest.mark.parametrize("queue_type", ["quorum", "classic"])
def test_delayed_messages_return_in_delay_order(amqp_channel, unique, queue_type):
    ch = amqp_channel
    main = f"{unique}.tasks"
    ch.queue_declare(queue=main, durable=True, arguments={"x-queue-type": "quorum"})
    ch.declared.append(main)
    topo = DelayQueues(main, [0.3, 0.6, 1.2, 2.4], queue_type=queue_type)
    topo.declare(ch)
    ch.declared.extend(delay_queue_name(main, ms) for ms in topo.steps_ms)
    # Idempotent: declaring again with the same policy must not raise PRECONDITION_FAILED.
    DelayQueues(main, [0.3, 0.6, 1.2, 2.4], queue_type=queue_type).declare(ch)

    sent = {}
    t0 = time.monotonic()
    # Longest first: a per-message TTL in one queue would hold the short ones behind it.
    for name, delay in (("long", 2.0), ("mid", 1.0), ("short", 0.25)):
        queue, ms = topo.publish(ch, json.dumps({"task_id": name}).encode(), delay,
                                 headers={"x-framepress-attempt": 1})
        assert queue == delay_queue_name(main, ms) and ms >= delay * 1000
        sent[name] = ms / 1000
    arrivals = []
    while len(arrivals) < 3 and time.monotonic() - t0 < 10:
        method, props, body = ch.basic_get(main, auto_ack=True)
        if method is None:
            time.sleep(0.02)
            continue
        arrivals.append((json.loads(body)["task_id"], time.monotonic() - t0, props))
    assert [a[0] for a in arrivals] == ["short", "mid", "long"]
    for name, seconds, props in arrivals:
        assert seconds >= sent[name] - 0.05, (name, seconds)   # never early
        assert seconds < sent[name] + 3.0                        # and not stuck
        assert props.headers.get("x-framepress-attempt") == 1    # headers survive the round trip
        assert props.delivery_mode == 2
