"""One tree of errors for the engine and the service.

Engine errors carry FFmpeg's message and the step that failed, so a task's `last_error` says what
was being done. `InputError` is never worth retrying; the others may be.
"""
from __future__ import annotations


class FramepressError(Exception):
    """Base of every error framepress raises on purpose."""

    #: Whether retrying the same work may succeed. Subclasses override.
    transient = False

    def __init__(self, message: str, *, step: str = "", ffmpeg_message: str = ""):
        self.step = step
        self.ffmpeg_message = ffmpeg_message
        super().__init__(message)


class InputError(FramepressError):
    """The source is unreadable, corrupt or unsupported. Never worth retrying."""


class EncodeError(FramepressError):
    """An encoder failed (resources, unsupported settings)."""

    transient = True


class GpuError(EncodeError):
    """The GPU failed mid-task (out of memory, a lost context, a session refused). Under
    hwaccel="auto" the engine reruns the task on the CPU before it lets one out."""


class OutputError(FramepressError):
    """Outputs could not be written (unwritable directory, disk full)."""

    transient = True


class Cancelled(FramepressError):
    """The work was cancelled through its cancel token."""


class LadderError(FramepressError, ValueError):
    """A ladder definition is invalid. Never worth retrying."""


class HardwareError(FramepressError):
    """The requested hardware acceleration is not available."""
