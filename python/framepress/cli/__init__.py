"""`framepress` command line. Each command group lives in its own module and registers here.

Expected errors print one clear line on stderr, no traceback: exit 2 for bad input or usage,
1 for other failures.
"""
from __future__ import annotations

import sys

import click

from framepress.errors import FramepressError, HardwareError, InputError, LadderError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="framepress")
def cli() -> None:
    """framepress: transcode video to an adaptive-bitrate ladder, locally or as a service."""


def _register() -> None:
    from framepress.cli import media, service, cluster, bench, admin, web  # noqa: F401  (each adds its commands to `cli`)


def _bad_input() -> tuple[type[BaseException], ...]:
    """Errors that mean the user's input is wrong: exit 2, like a usage error."""
    from framepress.service.errors import ConfigError, TaskNotFound
    return (InputError, LadderError, HardwareError, TaskNotFound, ConfigError)


def main(argv: list[str] | None = None) -> int:
    _register()
    try:
        cli.main(args=argv, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.UsageError as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except _bad_input() as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    except FramepressError as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    return 0


def run() -> None:
    sys.exit(main())
