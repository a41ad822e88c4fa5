"""Run a batch of verifier calls concurrently, each with a deadline of its own.

GRPO computes B*G rewards per step; the slowest sample must not stall the trainer, and no sample
may be decided by its place in a queue (issue 18). Each item runs in a thread of its own once
one of ``workers`` slots is free; its clock starts when it starts. The verifiers run untrusted
code and checkers in subprocesses with their own limits (DESIGN.md house style 7), so an item
normally answers well within ``item_timeout_s``, which is a safety net derived from those
limits; an item still running past it is reported as ``TIMED_OUT`` (a verifier that hung past
its own limits: could not judge), its slot is freed for the next item and its thread is
abandoned. The batch deadline is a second safety net sized from the work
(``ceil(N / workers) * item_timeout_s`` plus a margin), never what decides a sample.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: seconds added to the batch safety net on top of ``ceil(N / workers) * item_timeout_s``
BATCH_MARGIN_S = 30.0


@dataclass(frozen=True, slots=True)
class Outcome(Generic[R]):
    """What happened to one item: its value, or why there is none.

    Attributes:
        value: the function's result (None when ``error`` or ``timed_out``).
        error: ``repr`` of the exception the function raised, or "".
        timed_out: True when the item was still running at its own deadline (or was never
            started before the batch safety net).
        exception: the exception the function raised, or None.
    """

    value: R | None = None
    error: str = ""
    timed_out: bool = False
    exception: BaseException | None = None

    @property
    def ok(self) -> bool:
        """True when the function returned a value in time."""
        return not self.error and not self.timed_out


def batch_deadline_s(n_items: int, workers: int, item_timeout_s: float) -> float:
    """The batch safety net: ``ceil(n / workers) * item_timeout_s + BATCH_MARGIN_S`` seconds."""
    return math.ceil(n_items / max(1, workers)) * item_timeout_s + BATCH_MARGIN_S


def map_with_deadline(
    fn: Callable[[T], R], items: Sequence[T], *, workers: int, item_timeout_s: float,
    batch_timeout_s: float | None = None,
) -> list[Outcome[R]]:
    """Apply ``fn`` to every item, ``workers`` at a time, each with its own deadline.

    Args:
        fn: the per-item call (a grader, a sandbox run, a proof check).
        items: inputs, shape (N,).
        workers: items running at once (>= 1).
        item_timeout_s: wall-clock seconds one item may run, counted from its own start.
        batch_timeout_s: safety net for the whole batch; None: :func:`batch_deadline_s`.

    Returns:
        ``outcomes[i]`` for ``items[i]``, shape (N,). An exception becomes ``Outcome(error=...)``
        (and is logged), an item past its deadline ``Outcome(timed_out=True)``; its thread is
        abandoned (a daemon; the verifiers' own subprocess limits end it) and its slot reused.
    """
    n = len(items)
    if not n:
        return []
    workers = max(1, min(workers, n))
    if batch_timeout_s is None:
        batch_timeout_s = batch_deadline_s(n, workers, item_timeout_s)
    out: list[Outcome[R]] = [Outcome(timed_out=True) for _ in items]
    done_q: queue.SimpleQueue[tuple[int, R | None, BaseException | None]] = queue.SimpleQueue()

    def call(i: int) -> None:
        try:
            done_q.put((i, fn(items[i]), None))
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            done_q.put((i, None, e))

    running: dict[int, float] = {}  # item -> start (monotonic)
    next_i, finished = 0, 0
    t_end = time.monotonic() + batch_timeout_s
    while finished < n:
        while next_i < n and len(running) < workers:
            running[next_i] = time.monotonic()
            threading.Thread(target=call, args=(next_i,), name=f"reward-{next_i}",
                             daemon=True).start()
            next_i += 1
        now = time.monotonic()
        if now >= t_end:
            break
        wake = min([t_end, *(s + item_timeout_s for s in running.values())])
        try:
            i, value, exc = done_q.get(timeout=max(0.0, wake - now))
        except queue.Empty:
            now = time.monotonic()
            for i, start in list(running.items()):
                if now - start >= item_timeout_s:
                    del running[i]
                    finished += 1
                    log.warning("verifier call %d still running after its %.1f s limit: "
                                "skipped", i, item_timeout_s)
            continue
        if i not in running:  # finished after its deadline: already reported
            continue
        del running[i]
        finished += 1
        if exc is None:
            out[i] = Outcome(value=value)
        else:
            log.warning("verifier call %d raised %r", i, exc, exc_info=exc)
            out[i] = Outcome(error=repr(exc), exception=exc)
    if finished < n:
        log.warning("%d of %d verifier calls unfinished at the batch safety net (%.0f s): "
                    "skipped", n - finished, n, batch_timeout_s)
    return out
