"""Operator commands: `framepress tasks retry|resolve|cancel` and `framepress reaper`."""
from __future__ import annotations

import logging
import threading
from typing import Any

import click

from framepress.cli import cli
from framepress.cli.service import _print_json, _setup_logs, settings_options, tasks
from framepress.webhooks import Subscriptions


def _open(settings):
    from framepress.service.db import connect
    return connect(settings)


def _show(data: dict[str, Any], as_json: bool, text: str) -> None:
    if as_json:
        _print_json(data)
    else:
        click.echo(text)


@tasks.command("retry")
@click.argument("task_id")
@click.option("--reset-attempts", is_flag=True,
              help="Start a fresh retry budget (default: one more attempt).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@settings_options
def tasks_retry(settings, task_id: str, reset_attempts: bool, as_json: bool) -> None:
    """Requeue an escalated, failed or cancelled task (a `resumed` event)."""
    from framepress.service import admin
    from framepress.service.broker import open_broker
    db = _open(settings)
    broker = open_broker(settings, db)
    try:
        out = admin.retry(db, broker, task_id, reset_attempts=reset_attempts)
    finally:
        broker.close()
        db.dispose()
    _show(out, as_json, f"{task_id}: {out['previous_status']} -> queued "
                        f"(attempts {out['attempts']} of {out['max_attempts']})"
                        + ("" if out["published"] else "; the broker is away: its message goes out "
                                                       "when it answers"))


@tasks.command("resolve")
@click.argument("task_id")
@click.option("--note", required=True, help="Why the task is closed (kept in its events).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@settings_options
def tasks_resolve(settings, task_id: str, note: str, as_json: bool) -> None:
    """Close an escalated task for good: status `failed`, with the note."""
    from framepress.service import admin
    db = _open(settings)
    try:
        out = admin.resolve(db, task_id, note, webhooks=Subscriptions.from_settings(settings))
    finally:
        db.dispose()
    _show(out, as_json, f"{task_id}: {out['previous_status']} -> failed ({note})")


@tasks.command("cancel")
@click.argument("task_id")
@click.option("--reason", default="", help="Recorded in the `cancelled` event.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@settings_options
def tasks_cancel(settings, task_id: str, reason: str, as_json: bool) -> None:
    """Cancel a task; a worker running it stops within a heartbeat and uploads nothing more."""
    from framepress.service import admin
    db = _open(settings)
    try:
        out = admin.cancel(db, task_id, reason=reason,
                           webhooks=Subscriptions.from_settings(settings))
    finally:
        db.dispose()
    where = f" (was running on {out['running_on']})" if out["running_on"] else ""
    _show(out, as_json, f"{task_id}: {out['previous_status']} -> cancelled{where}")


def _serve_metrics(port: int | None) -> None:
    """The reaper's series (lost workers, backlog age) on /metrics, for the alerts. Optional: a
    port already taken (a worker on the same machine) costs the series, not the reaping."""
    if not port:
        return
    from framepress.scaling import metrics
    try:
        metrics.start_server(port, health=lambda: (True, "reaping"), ready=lambda: (True, "reaping"))
    except OSError as exc:
        logging.getLogger("framepress.reaper").warning(
            "reaper metrics not served on port %d: %s (set --metrics-port)", port, exc)


@cli.command()
@click.option("--interval", type=float, default=5.0, show_default=True,
              help="Seconds between rounds.")
@click.option("--once", is_flag=True, help="One round, then exit.")
@click.option("--json", "as_json", is_flag=True, help="With --once: print the round's report.")
@settings_options
def reaper(settings, interval: float, once: bool, as_json: bool) -> None:
    """Find workers whose heartbeat stopped; requeue their tasks (one leader on Postgres)."""
    if not (once and as_json):      # log lines go to stdout: keep them out of the JSON
        _setup_logs(settings)
    from framepress.service.failure import reaper as reaping
    from framepress.service.broker import open_broker
    db = _open(settings)
    broker = open_broker(settings, db)
    from framepress.config import worker_timeout
    timeout = worker_timeout(settings)      # --worker-timeout is a settings flag
    r = reaping.Reaper(db, broker,
                       worker_timeout=timeout, lease_grace=min(timeout, 10.0),
                       reaper_id=f"reaper-{__import__('os').getpid()}")
    from framepress.scaling import podcost
    pod_cost = podcost.from_environment(db)     # in Kubernetes: the workers' pod-deletion-cost
    # The outbox is relayed here as in every worker: with no worker running, staged messages
    # and storage jobs still go out.
    from framepress.service import outbox
    from framepress.service.storage import StorageRouter
    relay = outbox.Relay(db, broker,
                         storage=StorageRouter(allow_files=bool(settings.allow_file_uris)))
    try:
        if once:
            report = r.reap_once()
            if pod_cost:
                pod_cost.update()
            flushed = relay.flush()
            _show({**report.to_dict(), "relayed": flushed.sent, "relay_failed": flushed.failed},
                  as_json, f"lost workers: {len(report.lost_workers)}, requeued: "
                           f"{len(report.requeued)}, relayed: {flushed.sent}")
            return
        stop = threading.Event()
        import signal
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        logging.getLogger("framepress.reaper").info("reaper started (worker timeout %.0f s)",
                                                    timeout)
        _serve_metrics(settings.metrics_port)
        relay_thread = outbox.start_thread(relay, stop)
        reaping.run(r, stop, interval=interval, alongside=pod_cost.update if pod_cost else None)
        relay_thread.join(timeout=10)
    finally:
        broker.close()
        db.dispose()
