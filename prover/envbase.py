"""Shared machinery of the Lean-backed :class:`verimath.prover.types.ProofEnv` implementations.

Lean proof states live inside one process. When that process must be replaced (a tactic timed
out, the REPL crashed or ran out of memory), every state handle it gave out is dead. A
:class:`ReplayingEnv` therefore identifies states by their tactic path from the initial state
(``GoalState.path``) and keeps ``path -> handle`` for the current process only; after a restart
a state is re-created on demand by replaying its path. Search code never sees the restart.

Subclasses implement three hooks: ``_open`` (start a process and open the theorem),
``_step`` (one tactic on one handle) and ``_shutdown`` (kill the process).
"""

from __future__ import annotations

import contextlib
import logging
import time
from abc import ABC, abstractmethod
from typing import Any

from verimath.prover.audit import screen_tactic
from verimath.prover.types import (
    GoalState,
    LeanCrash,
    LeanStarved,
    LeanTimeout,
    ProofTask,
    ProverInfraError,
    TacticOutcome,
    TacticStatus,
)

log = logging.getLogger(__name__)

#: ``(status, handle, pp, num_goals, message)`` returned by ``_step``.
Step = tuple[TacticStatus, Any, str, int, str]


class ReplayingEnv(ABC):
    """A ProofEnv whose process can be replaced under the search (see module docstring).

    Args:
        max_restarts: process replacements allowed per theorem before
            :class:`ProverInfraError` is raised (a broken installation, not a bad tactic).
    """

    def __init__(self, *, max_restarts: int = 3) -> None:
        if max_restarts < 0:
            raise ValueError("max_restarts must be >= 0")
        self.max_restarts = max_restarts
        self.restarts = 0
        self.recycles = 0
        self._task: ProofTask | None = None
        self._handles: dict[tuple[str, ...], Any] = {}

    @abstractmethod
    def _open(self, task: ProofTask) -> tuple[Any, str, int]:
        """Start a process and open ``task``'s theorem: ``(handle, pp, num_goals)``."""

    @abstractmethod
    def _step(self, handle: Any, tactic: str) -> Step:
        """Run one tactic. Raises LeanTimeout / LeanCrash on infrastructure failure."""

    @abstractmethod
    def _shutdown(self) -> None:
        """Kill the current process (must not raise)."""

    def _should_recycle(self) -> bool:
        """Whether the current process is worn out (too many steps / live states).

        A worn-out process is replaced before the next tactic without counting toward
        ``max_restarts``: it is routine, not a failure.
        """
        return False

    def _recycle(self) -> None:
        assert self._task is not None
        log.info("recycling the lean process (worn out)")
        self._shutdown()
        self._handles = {}
        self.recycles += 1
        handle, _, _ = self._open(self._task)
        self._handles = {(): handle}

    def start(self, task: ProofTask) -> GoalState:
        """Open ``task`` (closing any previous theorem) and return its initial state."""
        self.close()
        self._task, self.restarts = task, 0
        handle, pp, n = self._open(task)
        self._handles = {(): handle}
        return GoalState(pp, (), n)

    def _restart(self, why: str) -> None:
        self._shutdown()
        self._handles = {}
        self.restarts += 1
        if self.restarts > self.max_restarts:
            raise ProverInfraError(f"lean process replaced {self.restarts - 1} times ({why}); "
                                   "giving up on this theorem")
        assert self._task is not None
        log.info("replacing the lean process (%s)", why)
        handle, _, _ = self._open(self._task)
        self._handles = {(): handle}

    def _resolve(self, path: tuple[str, ...]) -> Any:
        """The handle of the state at ``path`` in the current process, replaying if needed."""
        if path in self._handles:
            return self._handles[path]
        if not self._handles:
            self._restart("no live process")
        k = max(i for i in range(len(path) + 1) if path[:i] in self._handles)
        handle = self._handles[path[:k]]
        for i in range(k, len(path)):
            status, handle, _, _, msg = self._step(handle, path[i])
            if status is not TacticStatus.OPEN:
                raise ProverInfraError(f"replaying {path[:i + 1]} gave {status}: {msg} "
                                       "(lean is not deterministic here)")
            self._handles[path[:i + 1]] = handle
        return handle

    def run_tactic(self, state: GoalState, tactic: str) -> TacticOutcome:
        """Apply ``tactic`` to ``state`` (see :class:`verimath.prover.types.ProofEnv`)."""
        if self._task is None:
            raise ProverInfraError("run_tactic before start()")
        findings = screen_tactic(tactic)
        if findings:
            return TacticOutcome(TacticStatus.REJECTED, None, findings[0].why)
        t0 = time.monotonic()
        if self._handles and self._should_recycle():
            self._recycle()
        try:
            got = self._attempt(state, tactic, t0)
        except LeanStarved as e:  # the machine's, not the tactic's: once more, CPU-timed
            self._restart(f"starved: {e}")
            with self._cpu_timed():
                try:
                    got = self._attempt(state, tactic, t0)
                except LeanStarved as e2:
                    self._restart(f"starved again: {e2}")
                    return TacticOutcome(TacticStatus.CRASHED, None, str(e2),
                                         time.monotonic() - t0)
        if isinstance(got, TacticOutcome):
            return got
        status, new, pp, n, msg = got
        elapsed = time.monotonic() - t0
        path = state.path + (tactic,)
        if status is TacticStatus.OPEN:
            self._handles[path] = new
            return TacticOutcome(status, GoalState(pp, path, n), msg, elapsed)
        if status is TacticStatus.PROVED:
            return TacticOutcome(status, GoalState("", path, 0), msg, elapsed)
        return TacticOutcome(status, None, msg, elapsed)

    def _attempt(self, state: GoalState, tactic: str, t0: float) -> Step | TacticOutcome:
        """One try of ``tactic`` on ``state``: the step, or the outcome of a timeout / crash.

        Raises:
            LeanStarved: the try timed out without using its CPU time (see :meth:`_cpu_timed`).
        """
        try:
            handle = self._resolve(state.path)
            return self._step(handle, tactic)
        except LeanTimeout as e:
            self._restart(f"timeout: {e}")
            return TacticOutcome(TacticStatus.TIMEOUT, None, str(e), time.monotonic() - t0)
        except LeanCrash as e:
            self._restart(f"crash: {e}")
            return TacticOutcome(TacticStatus.CRASHED, None, str(e), time.monotonic() - t0)

    def _cpu_timed(self) -> contextlib.AbstractContextManager[Any]:
        """While open, requests are limited in CPU time (a re-check after ``LeanStarved``).

        Envs that cannot measure CPU time never raise ``LeanStarved``; this default is a no-op.
        """
        return contextlib.nullcontext()

    def close(self) -> None:
        """Kill the process and forget all states."""
        if self._handles or self._task is not None:
            self._shutdown()
        self._handles = {}
        self._task = None
