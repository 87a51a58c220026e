"""Progress of the command line's long jobs (import, export, prune, backup): a rich bar with
counts and a rate on a terminal, nothing at all when the output goes to a file or a pipe."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class Tracker(Protocol):
    def advance(self, count: int = 1) -> None: ...

    def update(self, completed: int, total: int | None = None) -> None: ...


class _Quiet:
    def advance(self, count: int = 1) -> None:
        del count

    def update(self, completed: int, total: int | None = None) -> None:
        del completed, total


class _Bar:
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task

    def advance(self, count: int = 1) -> None:
        self._progress.advance(self._task, count)

    def update(self, completed: int, total: int | None = None) -> None:
        self._progress.update(self._task, completed=completed, total=total)


class RateColumn(ProgressColumn):
    """Items per second (rich's own speed column counts bytes)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} {self.unit}/s", style="cyan")


def stdout_console() -> Console:
    return Console(file=sys.stdout)


@contextmanager
def tracking(
    description: str,
    *,
    total: int | None = None,
    unit: str = "rows",
    console: Console | None = None,
) -> Iterator[Tracker]:
    """A progress bar for one job, shown only when ``console`` (stdout) is a terminal."""
    console = console or stdout_console()
    if not console.is_terminal:
        yield _Quiet()
        return
    columns: list[ProgressColumn] = [
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        RateColumn(unit),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, transient=False) as progress:
        yield _Bar(progress, progress.add_task(description, total=total))
