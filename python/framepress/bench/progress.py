"""A progress bar while the bench runs (rich, on a terminal's stderr), or silence."""
from __future__ import annotations

import sys


class Progress:
    """Steps of known count; subclasses draw them. The base class draws nothing."""

    def add(self, steps: int) -> None:
        pass

    def step(self, text: str, done: bool = False) -> None:
        """`text` says what runs now; `done` marks the end of one counted step."""

    def close(self) -> None:
        pass

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class RichProgress(Progress):
    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn,
                                   TimeElapsedColumn)
        self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=Console(stderr=True), transient=True)
        self._task = self._bar.add_task("bench", total=0)
        self._bar.start()

    def add(self, steps: int) -> None:
        total = self._bar.tasks[0].total or 0
        self._bar.update(self._task, total=total + steps)

    def step(self, text: str, done: bool = False) -> None:
        self._bar.update(self._task, description=text, advance=1 if done else 0)

    def close(self) -> None:
        self._bar.stop()


def progress_for_terminal(enabled: bool = True) -> Progress:
    return RichProgress() if enabled and sys.stderr.isatty() else Progress()
