"""Run a batch of verifier calls concurrently with a wall-clock deadline per batch.

GRPO computes B*G rewards per step; the slowest sample must not stall the trainer. Each item runs
in a thread (the verifiers themselves run untrusted code and checkers in subprocesses with their
own limits, DESIGN.md house style 7); an item still running at the deadline is reported as
``TIMED_OUT`` and the batch goes on without it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Outcome(Generic[R]):
    """What happened to one item: its value, or why there is none.

    Attributes:
        value: the function's result (None when ``error`` or ``timed_out``).
        error: ``repr`` of the exception the function raised, or "".
        timed_out: True when the item was still running at the deadline.
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


def map_with_deadline(
    fn: Callable[[T], R], items: Sequence[T], *, workers: int, timeout_s: float
) -> list[Outcome[R]]:
    """Apply ``fn`` to every item on ``workers`` threads; give up on stragglers after ``timeout_s``.

    Args:
        fn: the per-item call (a grader, a sandbox run, a proof check).
        items: inputs, shape (N,).
        workers: threads (>= 1).
        timeout_s: wall-clock seconds for the whole batch, counted from the call.

    Returns:
        ``outcomes[i]`` for ``items[i]``, shape (N,). An exception becomes ``Outcome(error=...)``
        (and is logged), an item unfinished at the deadline ``Outcome(timed_out=True)``. Threads of
        timed-out items are abandoned (not joined); the verifiers' own subprocess limits end them.
    """
    if not items:
        return []
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(items))),
                              thread_name_prefix="reward")
    futures: dict[Future[R], int] = {pool.submit(fn, it): i for i, it in enumerate(items)}
    out: list[Outcome[R]] = [Outcome(timed_out=True) for _ in items]
    deadline = time.monotonic() + timeout_s
    pending = set(futures)
    try:
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            done, pending = wait(pending, timeout=left, return_when=FIRST_COMPLETED)
            for fut in done:
                i = futures[fut]
                exc = fut.exception()
                if exc is None:
                    out[i] = Outcome(value=fut.result())
                else:
                    log.warning("verifier call %d raised %r", i, exc, exc_info=exc)
                    out[i] = Outcome(error=repr(exc), exception=exc)
        if pending:
            log.warning("%d of %d verifier calls still running after %.1fs: skipped",
                        len(pending), len(items), timeout_s)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return out
