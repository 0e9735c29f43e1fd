"""RabbitMQ through pika (DESIGN §3, §4).

Consuming: one BlockingConnection whose thread only runs pika's I/O loop (so heartbeats keep
flowing through a long transcode); each delivery is handed to a single worker thread, and its
ack/nack goes back to the connection thread with `add_callback_threadsafe`. Prefetch 1.
Publishing: a separate connection with publisher confirms, reopened on demand. A blocking
connection answers broker heartbeats only while something calls into it, so a keepalive thread
services the idle publisher connection (else RabbitMQ drops it: "missed heartbeats from client").
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Optional

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError

from framepress.service.errors import BrokerError
from framepress.service.broker.base import KEEP, Broker, DeadLetter, Delivery, Handler, encode

log = logging.getLogger("framepress.broker")

RECONNECT_INITIAL_S = 0.5
RECONNECT_MAX_S = 30.0
PUBLISH_ATTEMPTS = 4


# A message handed back this many times (worker crashes, requeues while the database is away)
# is dead-lettered; `dead_letters` reconciles it with its task. Explicit, because the default
# differs between RabbitMQ versions (none before 4.0, 20 since).
DELIVERY_LIMIT = 20

_warned_queues: set[str] = set()


def queue_arguments(dead_letter_queue: str) -> dict[str, Any]:
    return {"x-queue-type": "quorum",
            "x-dead-letter-exchange": "",        # the default exchange routes by queue name
            "x-dead-letter-routing-key": dead_letter_queue,
            "x-delivery-limit": DELIVERY_LIMIT}


def declare_queues(ch: BlockingChannel, tasks_queue: str, dead_queue: str) -> BlockingChannel:
    """Declare the tasks and dead-letter queues; returns the channel to go on with.

    A tasks queue created with other arguments (by an older framepress, without the delivery
    limit) cannot be redeclared: RabbitMQ refuses with PRECONDITION_FAILED and closes the
    channel. It is then used as it is, on a new channel, with a warning saying how to apply the
    limit without recreating the queue (a policy)."""
    ch.queue_declare(dead_queue, durable=True, arguments={"x-queue-type": "quorum"})
    try:
        ch.queue_declare(tasks_queue, durable=True, arguments=queue_arguments(dead_queue))
        return ch
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != 406:
            raise
        reason = exc.reply_text
    if tasks_queue not in _warned_queues:
        _warned_queues.add(tasks_queue)
        log.warning("queue %s exists with other arguments (%s); using it as it is. To give it the "
                    "delivery limit: rabbitmqctl set_policy --apply-to quorum_queues "
                    "framepress-delivery-limit '^%s$' '{\"delivery-limit\": %d}'",
                    tasks_queue, reason, tasks_queue.replace(".", "\\."), DELIVERY_LIMIT)
    ch = ch.connection.channel()
    ch.queue_declare(tasks_queue, passive=True)
    return ch


def _death_reason(props: pika.BasicProperties) -> str:
    deaths = (props.headers or {}).get("x-death") or []
    return str(deaths[0].get("reason", "")) if deaths else ""


class RabbitDelivery(Delivery):
    def __init__(self, conn: pika.BlockingConnection, ch: BlockingChannel, tag: int, body: bytes,
                 redelivered: bool):
        self._conn, self._ch, self._tag = conn, ch, tag
        self.body = body
        self.redelivered = redelivered

    def _settle(self, what: str, fn: Callable[[], None]) -> None:
        def run() -> None:
            try:
                fn()
            except AMQPError as exc:  # the channel died meanwhile: the broker redelivers it
                log.warning("could not %s delivery %s: %r; it will be redelivered", what, self._tag, exc)
        try:
            self._conn.add_callback_threadsafe(run)
        except Exception as exc:  # noqa: BLE001  connection already closed
            log.warning("could not %s delivery %s: connection closed (%r); it will be redelivered",
                        what, self._tag, exc)

    def ack(self) -> None:
        self._settle("ack", lambda: self._ch.basic_ack(self._tag))

    def reject(self) -> None:
        self._settle("dead-letter", lambda: self._ch.basic_nack(self._tag, requeue=False))

    def requeue(self) -> None:
        self._settle("requeue", lambda: self._ch.basic_nack(self._tag, requeue=True))


def _settle_escaped(future: Future, delivery: "RabbitDelivery") -> None:
    """A handler must settle its delivery and not raise; should one raise anyway, the error is
    logged and the message handed back here, so the thread pool never swallows it (with
    prefetch 1 an unsettled delivery would stop this consumer for good)."""
    exc = future.exception()
    if exc is not None:
        log.error("delivery handler raised; requeueing the message", exc_info=exc)
        delivery.requeue()


class RabbitBroker(Broker):
    def __init__(self, url: str, tasks_queue: str, dead_queue: str, retry: Any = None):
        self.params = pika.URLParameters(url)
        self.params.heartbeat = self.params.heartbeat if "heartbeat=" in url else 30
        self.params.blocked_connection_timeout = 60
        self._tasks_queue, self.dead_queue = tasks_queue, dead_queue
        self._pub_conn: Optional[pika.BlockingConnection] = None
        self._pub_ch: Optional[BlockingChannel] = None
        self._pub_lock = threading.Lock()
        self._retry = retry               # retry.RetryPolicy: its steps size the delay queues
        self._delays: Any = None          # delay_queues.DelayQueues, declared on first use
        self._delays_channel: Any = None
        self.consuming = False            # a consumer is registered on a live connection
        self._keepalive: Optional[threading.Thread] = None
        self._closed = threading.Event()

    @property
    def tasks_queue(self) -> str:
        return self._tasks_queue

    def _connect(self) -> pika.BlockingConnection:
        try:
            return pika.BlockingConnection(self.params)
        except AMQPError as exc:
            raise BrokerError(f"cannot connect to RabbitMQ at {self.params.host}:{self.params.port}: "
                              f"{exc!r}", step="connect") from None

    # ---- publishing ---------------------------------------------------------------------------

    def declare(self) -> None:
        with self._pub_lock:
            self._publisher()

    def _publisher(self) -> BlockingChannel:
        if self._pub_ch is None or not self._pub_ch.is_open:
            self._close_publisher()
            self._pub_conn = self._connect()
            self._pub_ch = declare_queues(self._pub_conn.channel(), self._tasks_queue,
                                          self.dead_queue)
            self._pub_ch.confirm_delivery()
            # Escalation notices go to a queue next to the tasks queue.
            from framepress.service.failure.escalation import declare_queue, escalations_queue_for
            declare_queue(self._pub_ch, escalations_queue_for(self._tasks_queue))
            self._start_keepalive()
        return self._pub_ch

    def _start_keepalive(self) -> None:
        if self._keepalive is None or not self._keepalive.is_alive():
            self._closed.clear()
            self._keepalive = threading.Thread(target=self._keep_publisher_alive, daemon=True,
                                               name="framepress-publisher-heartbeat")
            self._keepalive.start()

    def _keep_publisher_alive(self) -> None:
        """Let pika answer heartbeats on the idle publisher connection, a few times per interval."""
        period = max(0.2, (self.params.heartbeat or 30) / 4)
        while not self._closed.wait(period):
            with self._pub_lock:
                conn = self._pub_conn
                if conn is None or not conn.is_open:
                    continue
                try:
                    conn.process_data_events(time_limit=0)
                except AMQPError as exc:   # dropped: the next publish reconnects
                    log.info("publisher connection lost while idle (%r)", exc)
                    self._close_publisher()

    def _close_publisher(self) -> None:
        if self._pub_conn is not None and self._pub_conn.is_open:
            try:
                self._pub_conn.close()
            except AMQPError:
                pass
        self._pub_conn = self._pub_ch = None

    def publish_json(self, queue: str, payload: dict[str, Any], *, priority: int = 0,
                     delay_s: float = 0.0) -> None:
        if delay_s > 0 and queue == self._tasks_queue:
            return self._publish_delayed(payload, delay_s)
        props = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent,
                                     content_type="application/json",
                                     priority=max(0, min(priority, 255)))
        body = encode(payload)
        with self._pub_lock:
            # Retried: the kept-open connection may have died while idle, and a quorum queue
            # declared a moment ago can nack while its leader is still being elected. A duplicate
            # message is harmless (the worker acks it as `duplicate_delivery`); a lost one is not.
            for attempt in range(1, PUBLISH_ATTEMPTS + 1):
                try:
                    self._publisher().basic_publish("", queue, body, props, mandatory=True)
                    return
                except pika.exceptions.UnroutableError as exc:
                    raise BrokerError(f"no queue {queue} to take the message: {exc!r}",
                                      step="publish") from None
                except (pika.exceptions.NackError, AMQPError) as exc:
                    if not isinstance(exc, pika.exceptions.NackError):
                        self._close_publisher()
                    if attempt == PUBLISH_ATTEMPTS:
                        raise BrokerError(f"publish to {queue} failed: {exc!r}", step="publish") from None
                    log.warning("publish to %s failed (%r); retrying", queue, exc)
                    time.sleep(0.2 * attempt)

    def _publish_delayed(self, payload: dict[str, Any], delay_s: float) -> None:
        """Park the message in the delay queue of that step; it dead-letters back when due."""
        from framepress.service.delay_queues import DelayQueues
        with self._pub_lock:
            for attempt in (1, 2):
                try:
                    ch = self._publisher()
                    if self._delays is None or self._delays_channel is not ch:
                        # Steps from the same retry settings as the worker's backoff.
                        self._delays = DelayQueues(self._tasks_queue, self._retry)
                        self._delays.declare(ch)
                        self._delays_channel = ch
                    self._delays.publish(ch, encode(payload), delay_s)
                    return
                except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
                    raise BrokerError(f"broker refused the delayed message: {exc!r}",
                                      step="publish") from None
                except AMQPError as exc:
                    self._close_publisher()
                    if attempt == 2:
                        raise BrokerError(f"delayed publish failed: {exc!r}", step="publish") from None

    # ---- dead letters ---------------------------------------------------------------------------

    def review_dead_letters(self, decide: Callable[[DeadLetter], str], limit: int = 100) -> int:
        """One pass over the dead-letter queue, as deep as it was when the pass began. A kept
        message goes back to the tail (so the next pass sees it again, after any new ones); a
        message is acked only after `decide` (and whatever it committed) returned."""
        reviewed = 0
        with self._pub_lock:
            ch = self._publisher()
            depth = ch.queue_declare(self.dead_queue, passive=True).method.message_count
            for _ in range(min(depth, limit)):
                method, props, body = ch.basic_get(self.dead_queue)
                if method is None:
                    break
                try:
                    verdict = decide(DeadLetter(body, _death_reason(props)))
                except Exception:
                    ch.basic_nack(method.delivery_tag, requeue=True)   # e.g. the database is away
                    raise
                if verdict == KEEP:
                    ch.basic_publish("", self.dead_queue, body, props)
                ch.basic_ack(method.delivery_tag)
                reviewed += 1
        return reviewed

    # ---- consuming ----------------------------------------------------------------------------

    def consume(self, handler: Handler, stop: threading.Event,
                on_idle: Optional[Callable[[], None]] = None) -> None:
        backoff = RECONNECT_INITIAL_S
        with ThreadPoolExecutor(1, thread_name_prefix="framepress-task") as executor:
            while not stop.is_set():
                consumed = threading.Event()
                try:
                    self._consume_connection(handler, stop, executor, on_idle, consumed)
                    return
                except (AMQPError, BrokerError, OSError) as exc:
                    if consumed.is_set():
                        # The connection worked: this is a new outage, not the old one going on.
                        backoff = RECONNECT_INITIAL_S
                    log.warning("broker connection lost (%r); reconnecting in %.1f s", exc, backoff)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, RECONNECT_MAX_S)

    def _consume_connection(self, handler: Handler, stop: threading.Event,
                            executor: ThreadPoolExecutor, on_idle,
                            consumed: threading.Event) -> None:
        conn = self._connect()
        inflight: list[Future] = []
        try:
            ch = declare_queues(conn.channel(), self._tasks_queue, self.dead_queue)
            ch.basic_qos(prefetch_count=1)

            def on_message(_ch, method, _props, body) -> None:
                d = RabbitDelivery(conn, ch, method.delivery_tag, body, bool(method.redelivered))
                future = executor.submit(handler, d)
                future.add_done_callback(lambda f: _settle_escaped(f, d))
                inflight[:] = [future]

            tag = ch.basic_consume(self._tasks_queue, on_message)
            self.consuming = True      # read by the worker's /readyz
            consumed.set()
            log.info("consuming %s", self._tasks_queue)
            last_idle = 0.0
            while not stop.is_set():
                conn.process_data_events(time_limit=0.25)
                busy = bool(inflight) and not inflight[0].done()
                if on_idle and not busy and time.monotonic() - last_idle > 1.0:
                    last_idle = time.monotonic()
                    on_idle()
            # Drain: take nothing new, let the task in hand finish, send its ack, then close.
            ch.basic_cancel(tag)
            while inflight and not inflight[0].done():
                conn.process_data_events(time_limit=0.25)
            conn.process_data_events(time_limit=0)
        finally:
            self.consuming = False
            # Connection lost mid-task: the task goes on (it needs only the database and storage);
            # its ack will fail and the broker redelivers, which then finds it settled.
            while inflight and not inflight[0].done():
                time.sleep(0.1)
            if conn.is_open:
                try:
                    conn.close()
                except AMQPError:
                    pass

    def close(self) -> None:
        self._closed.set()
        with self._pub_lock:
            self._close_publisher()
