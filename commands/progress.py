"""Terminal progress bars for long-running commands, drawn with ``rich``.

Every bar comes from :func:`stderr_progress`: it goes to stderr and only when stderr is a
terminal, so the summary on stdout stays clean for scripts. ``migrate``: objects are counted
as they are listed, so the total grows while the listing runs; bytes advance as they
stream. ``reindex``: sites are the bar, the objects and bytes indexed so far its caption.
``artifacts download``: the bytes of the tar against its announced length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Self

from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


def stderr_progress(*columns: str | ProgressColumn, enabled: bool) -> Progress:
    """A progress display of ``columns`` on stderr; it draws nothing unless ``enabled`` and
    stderr is a terminal."""
    console = Console(stderr=True)
    return Progress(*columns, console=console, disable=not enabled or not console.is_terminal)


class _Bar:
    """A context manager that starts and stops its display, ``_progress``."""

    _progress: Progress

    def __enter__(self) -> Self:
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()


class MigrateBar(_Bar):
    """Implements ``commands.migrate_run.Progress``; a context manager that starts/stops
    the bar."""

    def __init__(self, *, enabled: bool = True) -> None:
        self._progress = stderr_progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("objects"),
            TextColumn("{task.fields[copied]}"),
            TimeElapsedColumn(),
            enabled=enabled,
        )
        self._task: TaskID = self._progress.add_task("migrate", total=0, copied="")
        self._objects_total = 0
        self._bytes = 0
        self._total_bytes = 0

    def listed(self, objects: int, size: int) -> None:
        self._objects_total += objects
        self._total_bytes += size
        self._progress.update(self._task, total=self._objects_total, copied=self._copied())

    def transferred(self, size: int) -> None:
        self._bytes += size
        self._progress.update(self._task, copied=self._copied())

    def finished_object(self) -> None:
        self._progress.advance(self._task)

    def _copied(self) -> str:
        elapsed = self._progress.tasks[0].elapsed or 0.0
        rate = f" {decimal(int(self._bytes / elapsed))}/s" if elapsed > 0.5 else ""
        return f"{decimal(self._bytes)} copied of {decimal(self._total_bytes)} listed{rate}"


class ReindexBar(_Bar):
    """Implements ``policy.reindex.ReindexProgress``; a context manager like MigrateBar."""

    def __init__(self, *, enabled: bool = True) -> None:
        self._progress = stderr_progress(
            TextColumn("[bold]reindex[/bold] {task.fields[site]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("sites  {task.fields[indexed]}"),
            TimeElapsedColumn(),
            enabled=enabled,
        )
        self._task: TaskID = self._progress.add_task("reindex", total=None, site="", indexed="")
        self._objects = 0
        self._bytes = 0
        self._started_sites = 0

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self._progress.update(self._task, completed=self._started_sites)
        super().__exit__(kind, value, traceback)

    def sites(self, total: int) -> None:
        self._progress.update(self._task, total=total)

    def site(self, name: str) -> None:
        self._progress.update(self._task, completed=self._started_sites, site=name)
        self._started_sites += 1

    def indexed(self, objects: int, size: int) -> None:
        self._objects += objects
        self._bytes += size
        caption = f"{self._objects} objects, {decimal(self._bytes)}"
        self._progress.update(self._task, indexed=caption)


@contextmanager
def download_bar(enabled: bool, name: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A byte progress bar for the download ``name`` of ``total`` bytes (None: unknown);
    yields advance(bytes)."""
    progress = stderr_progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        enabled=enabled,
    )
    task = progress.add_task(name, total=total)
    with progress:
        yield lambda size: progress.advance(task, size)
