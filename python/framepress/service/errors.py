"""Errors of the task pipeline, in the engine's error tree (`framepress.errors`).

`transient` tells the failure policy whether the same work may succeed later.
"""
from __future__ import annotations

from framepress.errors import FramepressError, InputError


class SourceMissing(InputError):
    """The source object does not exist. Never worth retrying."""


class StorageError(FramepressError):
    """The object store failed (network, 5xx, throttling) or a transfer did not verify."""

    transient = True


class StaleLease(FramepressError):
    """This worker's lease on the task was taken over; it must not write, upload or succeed."""


class BadMessage(FramepressError):
    """A queue message that can never be processed (not JSON, no task_id, unknown task)."""


class BrokerError(FramepressError):
    """The broker refused or failed a publish."""

    transient = True


class ConfigError(FramepressError, ValueError):
    """A setting or URI the service cannot use."""


class TaskNotFound(FramepressError):
    """No task has that ID."""
