"""The LeanDojo backend (``lean-dojo``): tactic-level interaction through ``Dojo``.

``Dojo(Theorem(LeanGitRepo(url, commit), file_path, full_name))`` opens a theorem of a traced
repository (e.g. a miniF2F Lean 4 port) in a ``lean`` process; ``run_tac`` returns
``TacticState`` / ``ProofFinished`` / ``LeanError`` / ``ProofGivenUp``. A tactic that exceeds
the Dojo timeout raises ``DojoTacticTimeoutError`` and a dead process ``DojoCrashError``: in
both cases :class:`DojoEnv` exits the Dojo (killing the process), opens a fresh one and replays
states on demand (:class:`prover.envbase.ReplayingEnv`) — a stuck REPL is replaced, never reused.

LeanDojo reads its limits from the environment when it is first imported:
``TACTIC_MEMORY_LIMIT`` (e.g. ``"16g"``) and ``TACTIC_CPU_LIMIT``; :class:`DojoEnv` sets them
before that import. A proof found through LeanDojo is still audited by a
:class:`prover.types.ProofChecker` (LeanDojo's own ``ProofFinished`` does not look at axioms).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prover.envbase import ReplayingEnv, Step
from prover.lean_text import parse_statement
from prover.toolchain import DOCTOR_HINT
from prover.types import (
    LeanCrash,
    LeanTimeout,
    LeanUnavailable,
    ProofTask,
    ProverInfraError,
    TacticStatus,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DojoConfig:
    """Where the theorems live and the per-tactic limits.

    Attributes:
        repo_url: git URL (or local path) of a Lean 4 repo LeanDojo has traced.
        commit: commit or tag of ``repo_url``.
        file_path: the ``.lean`` file holding the benchmark theorems, relative to the repo.
        timeout_s: seconds one tactic may take before the process is replaced.
        memory_gb: LeanDojo's ``TACTIC_MEMORY_LIMIT`` in GiB.
        cpus: LeanDojo's ``TACTIC_CPU_LIMIT`` (threads of the lean process).
    """

    repo_url: str = "https://github.com/yangky11/miniF2F-lean4"
    commit: str = "main"
    file_path: str = "MiniF2F/Test.lean"
    timeout_s: int = 60
    memory_gb: int = 16
    cpus: int = 1

    def __post_init__(self) -> None:
        if not self.file_path.endswith(".lean"):
            raise ValueError(f"file_path={self.file_path!r}: must name a .lean file")
        if self.timeout_s < 1 or self.memory_gb < 1 or self.cpus < 1:
            raise ValueError("timeout_s, memory_gb and cpus must be >= 1")


def lean_dojo() -> Any:
    """The ``lean_dojo`` module, imported on first use (an optional dependency).

    Raises:
        LeanUnavailable: ``lean-dojo`` is not installed (``pip install 'verimath[lean]'``).
    """
    try:
        import lean_dojo as mod
    except ImportError as e:
        raise LeanUnavailable(
            "LeanDojo is not installed (it is optional: pip install 'verimath[lean]', or use "
            f"env=repl); {DOCTOR_HINT}") from e
    return mod


def _set_limits(cfg: DojoConfig) -> None:
    if "lean_dojo" in sys.modules:
        if os.environ.get("TACTIC_MEMORY_LIMIT") != f"{cfg.memory_gb}g":
            log.warning("lean_dojo already imported; its memory limit stays %s",
                        os.environ.get("TACTIC_MEMORY_LIMIT", "32g"))
        return
    os.environ["TACTIC_MEMORY_LIMIT"] = f"{cfg.memory_gb}g"
    os.environ["TACTIC_CPU_LIMIT"] = str(cfg.cpus)


def default_dojo_factory(cfg: DojoConfig) -> Callable[[ProofTask], Any]:
    """``task -> Dojo`` for the theorem named like ``task``'s statement in ``cfg``'s repo."""
    _set_limits(cfg)
    ld = lean_dojo()
    repo = ld.LeanGitRepo(cfg.repo_url, cfg.commit)

    def make(task: ProofTask) -> Any:
        name = parse_statement(task.formal_statement).name or task.name
        return ld.Dojo(ld.Theorem(repo, cfg.file_path, name), timeout=cfg.timeout_s)

    return make


class DojoEnv(ReplayingEnv):
    """:class:`prover.types.ProofEnv` over LeanDojo.

    Args:
        cfg: repo and limits.
        dojo_factory: ``task -> Dojo`` context manager; default :func:`default_dojo_factory`.
            Tests pass fakes that return the real ``lean_dojo`` result classes.
        max_restarts: process replacements per theorem before giving up with
            :class:`ProverInfraError`.
    """

    def __init__(self, cfg: DojoConfig | None = None, *,
                 dojo_factory: Callable[[ProofTask], Any] | None = None,
                 max_restarts: int = 3) -> None:
        super().__init__(max_restarts=max_restarts)
        self.cfg = cfg or DojoConfig()
        self._factory = dojo_factory
        self._cm: Any = None
        self._dojo: Any = None

    def _open(self, task: ProofTask) -> tuple[Any, str, int]:
        ld = lean_dojo()
        DojoCrashError, DojoInitError, TacticState = (  # noqa: N806
            ld.DojoCrashError, ld.DojoInitError, ld.TacticState)

        if self._factory is None:
            self._factory = default_dojo_factory(self.cfg)
        self._cm = self._factory(task)
        try:
            self._dojo, init = self._cm.__enter__()
        except (DojoInitError, DojoCrashError) as e:
            self._cm = None
            raise ProverInfraError(f"LeanDojo could not open {task.name!r}: {e}") from e
        if not isinstance(init, TacticState):
            raise ProverInfraError(f"LeanDojo opened {task.name!r} in command mode")
        return init, init.pp, init.num_goals

    def _step(self, handle: Any, tactic: str) -> Step:
        from lean_dojo import (
            DojoCrashError,
            DojoTacticTimeoutError,
            LeanError,
            ProofFinished,
            ProofGivenUp,
            TacticState,
        )

        try:
            res = self._dojo.run_tac(handle, tactic)
        except DojoTacticTimeoutError as e:
            raise LeanTimeout(f"tactic exceeded {self.cfg.timeout_s}s") from e
        except DojoCrashError as e:
            raise LeanCrash(f"LeanDojo crashed ({'out of memory' if e.is_out_of_memory else e})"
                            ) from e
        if isinstance(res, TacticState):
            return TacticStatus.OPEN, res, res.pp, res.num_goals, res.message or ""
        if isinstance(res, ProofFinished):
            return TacticStatus.PROVED, None, "", 0, res.message or ""
        if isinstance(res, ProofGivenUp):
            return TacticStatus.GIVEN_UP, None, "", 0, "proof contains sorry"
        if isinstance(res, LeanError):
            return TacticStatus.ERROR, None, "", 0, res.error
        raise LeanCrash(f"unexpected LeanDojo result {type(res).__name__}")

    def _shutdown(self) -> None:
        cm, self._cm, self._dojo = self._cm, None, None
        if cm is None:
            return
        try:
            cm.__exit__(None, None, None)
        except Exception as e:  # noqa: BLE001 - the process may already be gone
            log.debug("closing Dojo failed: %s", e)
