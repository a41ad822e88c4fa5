"""Progress bars on stderr for long jobs (one bar per named stage), shared by every CLI job.

Library code reports progress through this object's methods; it never prints. With
``enabled=False`` every method is a no-op, so jobs call it unconditionally.
"""

from __future__ import annotations

from typing import Any


class StageBars:
    """A rich progress display with one bar per stage (eval, prove, each datagen stage).

    Args:
        enabled: draw bars on stderr; False makes every method a no-op.

    Use as a context manager. ``start(stage, total, done)`` adds a bar whose first ``done``
    items (already stored by an earlier, interrupted run) show as complete.
    """

    def __init__(self, enabled: bool = True) -> None:
        self._p: Any = None
        self._tasks: dict[str, Any] = {}
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._p = Progress(TextColumn("{task.description:<14}"), BarColumn(),
                               MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                               console=Console(stderr=True))

    def start(self, stage: str, total: int, done: int = 0) -> None:
        """Add the bar of ``stage`` with ``total`` items, ``done`` of them already complete."""
        if self._p is not None:
            self._tasks[stage] = self._p.add_task(stage, total=total, completed=done)

    def advance(self, stage: str, n: int = 1) -> None:
        """Advance the bar of ``stage`` by ``n`` items."""
        if self._p is not None:
            self._p.advance(self._tasks[stage], n)

    def finish(self, stage: str) -> None:
        """Mark the bar of ``stage`` complete (e.g. when items were filtered out upstream)."""
        task = self._tasks.get(stage)
        if self._p is not None and task is not None:
            self._p.update(task, completed=self._p.tasks[task].total or 0)

    def __enter__(self) -> StageBars:
        if self._p is not None:
            self._p.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._p is not None:
            self._p.stop()
