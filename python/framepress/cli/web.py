"""`framepress web` (the console) and `framepress webhooks list`."""
from __future__ import annotations

from typing import Optional

import click

from framepress.cli import cli
from framepress.cli.service import _print_json, _setup_logs, settings_options


@cli.command()
@click.option("--port", type=int, default=None,
              help="Port to listen on (default: FRAMEPRESS_WEB_PORT, else 8080).")
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@settings_options
def web(settings, port: Optional[int], host: str) -> None:
    """The operations console: JSON API (/openapi.json) and pages, on the workers' database and
    broker. Actions need FRAMEPRESS_ADMIN_TOKEN (Bearer, or the login page)."""
    _setup_logs(settings)
    from framepress.web.server import Server
    server = Server(settings, host=host, port=port)
    server.serve(started=lambda: click.echo(
        f"framepress console on http://{host}:{server.port}/", err=True))


@cli.group()
def webhooks() -> None:
    """Webhook deliveries (signed task events)."""


@webhooks.command("list")
@click.option("--task", "task_id", default=None, help="Only this task's deliveries.")
@click.option("--status", "status_", type=click.Choice(["pending", "delivered", "failed"]),
              default=None)
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, attempts included.")
@settings_options
def webhooks_list(settings, task_id: Optional[str], status_: Optional[str], limit: int,
                  as_json: bool) -> None:
    """Deliveries, newest first, with every attempt (URLs shown without their path)."""
    from framepress.service.db import connect
    from framepress.webhooks.dispatcher import list_deliveries
    db = connect(settings)
    try:
        rows = list_deliveries(db, task_id=task_id, status=status_, limit=limit)
    finally:
        db.dispose()
    if as_json:
        _print_json(rows)
        return
    from rich.console import Console
    from rich.table import Table
    table = Table("id", "task", "type", "to", "status", "attempts", "last answer")
    for r in rows:
        table.add_row(r["id"], (r["task_id"] or "")[:8], r["type"], r["url"] or "", r["status"],
                      str(r["attempts"]),
                      " ".join(str(x) for x in (r["last_status_code"], r["last_error"]) if x))
    Console().print(table)
