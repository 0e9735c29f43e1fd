"""Service commands: `worker`, `submit`, `status`, `tasks list`, `db upgrade`, `demo`.

Every setting of `framepress.config.Settings` is a flag here (`--database-url` ...) and an
environment variable (`FRAMEPRESS_DATABASE_URL` ...); the flag wins.
"""
from __future__ import annotations

import functools
import json
import sys
from dataclasses import fields
from typing import Any, Callable, Optional

import click

from framepress.cli import cli
from framepress.config import Settings
from framepress.service.errors import TaskNotFound


def settings_options(fn: Callable) -> Callable:
    """Add one flag per settings field; the command receives a resolved `settings`."""
    names = [f.name for f in fields(Settings)]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        overrides = {n: kwargs.pop(n) for n in names}
        kwargs["settings"] = Settings.from_env(**overrides)
        return fn(*args, **kwargs)

    for f in reversed(fields(Settings)):
        flag = "--" + f.name.replace("_", "-")
        env = "FRAMEPRESS_" + f.name.upper()
        help_text = f"{f.metadata['help']} [env {env}]"
        if f.metadata["type"] is bool:
            opt = click.option(f"{flag}/--no-{flag[2:]}", f.name, default=None, help=help_text)
        elif f.metadata["choices"]:
            opt = click.option(flag, f.name, type=click.Choice(f.metadata["choices"]), default=None,
                               help=help_text)
        else:
            opt = click.option(flag, f.name, type=f.metadata["type"], default=None, help=help_text)
        wrapper = opt(wrapper)
    return wrapper


def _setup_logs(settings: Settings, level: Optional[str] = None) -> None:
    from framepress.logs import setup
    setup(settings.log_format or "text", level or settings.log_level or "INFO")


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=None, default=str))


# ---- worker ---------------------------------------------------------------------------------

@cli.command()
@click.option("--max-tasks", type=int, default=None, help="Exit after this many tasks.")
@settings_options
def worker(settings: Settings, max_tasks: Optional[int]) -> None:
    """Take tasks off the queue and run them until SIGTERM (which drains: the task in hand finishes)."""
    _setup_logs(settings)
    from framepress.service.worker import run_worker
    sys.exit(run_worker(settings, max_tasks=max_tasks))


# ---- clients --------------------------------------------------------------------------------

@cli.command()
@click.argument("source")
@click.option("--output", "output", default=None, help="Where renditions go (s3://bucket/prefix); "
              "they land under <output>/<task_id>/. Default: FRAMEPRESS_OUTPUT_URI.")
@click.option("--ladder", default="default", show_default=True, help="Built-in ladder name or JSON file.")
@click.option("--priority", type=int, default=0, show_default=True)
@click.option("--webhook", default=None, help="A URL that gets this task's events (succeeded, "
              "escalated, failed, cancelled), signed with FRAMEPRESS_WEBHOOK_SECRET.")
@click.option("--split-after", "split_after", type=float, default=None,
              help="Split this task into chunks if its source is longer than this many seconds (0: never); "
                   "default: the worker's FRAMEPRESS_SPLIT_SECONDS.")
@click.option("--chunk-length", "chunk_length", type=float, default=None,
              help="About how long each chunk is, seconds; default: the worker's FRAMEPRESS_CHUNK_SECONDS.")
@click.option("--quality", is_flag=True, help="Measure each rendition's PSNR and SSIM (shown by status; "
              "not for split tasks).")
@click.option("--json", "as_json", is_flag=True, help="Print {\"task_id\": ...}.")
@settings_options
def submit(settings: Settings, source: str, output: Optional[str], ladder: str, priority: int,
           webhook: Optional[str], split_after: Optional[float], chunk_length: Optional[float],
           quality: bool, as_json: bool) -> None:
    """Queue SOURCE (s3://bucket/key, or file:///path in embedded mode) for transcoding."""
    from framepress.client import Client
    options = {k: v for k, v in (("split_seconds", split_after), ("chunk_seconds", chunk_length)) if v is not None}
    if quality:
        options["quality"] = True
    with Client(settings) as c:
        task_id = c.submit(source, output, ladder=ladder, priority=priority, webhook=webhook,
                           options=options or None)
    if as_json:
        _print_json({"task_id": task_id})
    else:
        click.echo(f"submitted {task_id}")


@cli.command()
@click.argument("task_id")
@click.option("--json", "as_json", is_flag=True, help="Print the status JSON.")
@settings_options
def status(settings: Settings, task_id: str, as_json: bool) -> None:
    """A task's status, progress, event timeline and renditions."""
    from framepress.client import Client
    with Client(settings) as c:
        data = c.status(task_id)
    if data is None:
        raise TaskNotFound(f"no task {task_id}")
    if as_json:
        _print_json(data)
    else:
        from framepress.cli.render import render_status
        render_status(data)


@cli.group()
def tasks() -> None:
    """List and manage tasks."""


@tasks.command("list")
@click.option("--status", "status_", default=None, help="Only tasks in this status.")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@settings_options
def tasks_list(settings: Settings, status_: Optional[str], limit: int, as_json: bool) -> None:
    """Tasks, newest first."""
    from framepress.client import Client
    with Client(settings) as c:
        rows = c.list_tasks(status_, limit)
    if as_json:
        _print_json(rows)
    else:
        from framepress.cli.render import render_task_list
        render_task_list(rows)


# ---- database -------------------------------------------------------------------------------

@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@settings_options
def db_upgrade(settings: Settings) -> None:
    """Apply the schema migrations (workers and clients also do this on start)."""
    from framepress.config import redact_url
    from framepress.service.db import connect
    from framepress.service.db.migrate import current_revision
    database = connect(settings)
    click.echo(f"{redact_url(settings.database_url)} at revision {current_revision(database.engine)}")
    database.dispose()


# ---- demo -----------------------------------------------------------------------------------

@cli.command()
@click.option("--seconds", type=float, default=4.0, show_default=True, help="Length of the generated clip.")
@click.option("--size", default="1280x720", show_default=True, help="Size of the generated clip.")
@click.option("--ladder", default="default", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the final status JSON.")
@click.option("--verbose", is_flag=True, help="Show the worker's log lines.")
@click.option("--console", "with_console", is_flag=True,
              help="Afterwards, leave the console running on the demo's data and print its URL.")
@click.option("--console-port", type=int, default=None,
              help="The console's port (default: FRAMEPRESS_WEB_PORT, else 8080; 0: any free one).")
@settings_options
def demo(settings: Settings, seconds: float, size: str, ladder: str, as_json: bool,
         verbose: bool, with_console: bool, console_port: Optional[int]) -> None:
    """The whole flow with no services: generate a clip, submit it, run a worker, show the result."""
    _setup_logs(settings, "INFO" if verbose else "WARNING")
    from framepress.demo import run_demo
    port = None
    if with_console or console_port is not None:
        port = settings.web_port if console_port is None else console_port
    sys.exit(run_demo(settings, seconds=seconds, size=size, ladder=ladder, as_json=as_json,
                      console_port=port))
