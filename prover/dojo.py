"""The LeanDojo backend (``lean-dojo``): tactic-level interaction through ``Dojo``.

``Dojo(Theorem(LeanGitRepo(url, commit), file_path, full_name))`` opens a theorem of a traced
repository (e.g. a miniF2F Lean 4 port) in a ``lean`` process; ``run_tac`` returns
``TacticState`` / ``ProofFinished`` / ``LeanError`` / ``ProofGivenUp``. A tactic that exceeds
the Dojo timeout raises ``DojoTacticTimeoutError`` and a dead process ``DojoCrashError``: in
both cases :class:`DojoEnv` exits the Dojo (killing the process), opens a fresh one and replays
states on demand (:class:`verimath.prover.envbase.ReplayingEnv`) — a stuck REPL is replaced, never
reused.

LeanDojo reads its limits from the environment when it is first imported:
``TACTIC_MEMORY_LIMIT`` (e.g. ``"16g"``) and ``TACTIC_CPU_LIMIT``; :class:`DojoEnv` sets them
before that import. A proof found through LeanDojo is still audited by a
:class:`verimath.prover.types.ProofChecker` (LeanDojo's own ``ProofFinished`` does not look at
axioms).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from verimath.prover.envbase import ReplayingEnv, Step
from verimath.prover.lean_text import parse_statement
from verimath.prover.toolchain import DOCTOR_HINT
from verimath.prover.types import (
    LeanCrash,
    LeanTimeout,
    LeanUnavailable,
    LeanVersion,
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


def _toolchain_version(toolchain: str | None) -> str | None:
    """``leanprover/lean4:v4.9.0`` and ``v4.9.0`` -> ``v4.9.0``."""
    return toolchain.strip().split(":")[-1] if toolchain else None


def dojo_repo_version(repo: Any) -> LeanVersion:
    """Toolchain and Mathlib revision of a ``lean_dojo.LeanGitRepo``.

    Reads ``repo.lean_version`` and the ``mathlib`` entry of its ``lake-manifest.json``
    (``repo.get_config``); either is None when the repo does not say.
    """
    mathlib: str | None = None
    try:
        manifest = repo.get_config("lake-manifest.json", num_retries=0)
    except Exception as e:  # noqa: BLE001 - an old repo without a manifest
        log.debug("no lake-manifest.json in %s: %s", repo, e)
        manifest = None
    for pkg in (manifest or {}).get("packages", []):
        if str(pkg.get("name", "")).lower() == "mathlib":
            mathlib = pkg.get("rev")
    return LeanVersion(getattr(repo, "lean_version", None), mathlib)


def require_same_lean(dojo: LeanVersion, checker: LeanVersion) -> None:
    """Refuse a LeanDojo repo whose toolchain / Mathlib differ from the checker project's.

    A proof found in one Lean and audited in another is judged on a different library (names
    and lemmas change between Mathlib revisions). Unknown values are not compared.

    Raises:
        LeanUnavailable: naming both versions.
    """
    a, b = _toolchain_version(dojo.toolchain), _toolchain_version(checker.toolchain)
    if a and b and a != b:
        raise LeanUnavailable(f"the LeanDojo repo uses Lean {a} but the checker project uses "
                              f"{b}; trace a repo on the checker's toolchain (or point "
                              "--lean-project at one that matches)")
    if dojo.mathlib_rev and checker.mathlib_rev and dojo.mathlib_rev != checker.mathlib_rev:
        raise LeanUnavailable(f"the LeanDojo repo pins Mathlib {dojo.mathlib_rev} but the "
                              f"checker project pins {checker.mathlib_rev}")


def default_dojo_factory(cfg: DojoConfig, expected: LeanVersion | None = None,
                         repo: Any = None) -> Callable[[ProofTask], Any]:
    """``task -> Dojo`` for the theorem named like ``task``'s statement in ``cfg``'s repo.

    Args:
        cfg: repo and limits.
        expected: the checker project's version; a different repo toolchain / Mathlib
            revision is refused (see :func:`require_same_lean`). None skips the check.
        repo: a prebuilt ``LeanGitRepo`` (tests); None builds one from ``cfg``.

    Raises:
        LeanUnavailable: the versions differ.
    """
    _set_limits(cfg)
    ld = lean_dojo()
    if repo is None:
        repo = ld.LeanGitRepo(cfg.repo_url, cfg.commit)
    if expected is not None:
        require_same_lean(dojo_repo_version(repo), expected)

    def make(task: ProofTask) -> Any:
        name = parse_statement(task.formal_statement).name or task.name
        return ld.Dojo(ld.Theorem(repo, cfg.file_path, name), timeout=cfg.timeout_s)

    return make


class DojoEnv(ReplayingEnv):
    """:class:`verimath.prover.types.ProofEnv` over LeanDojo.

    Args:
        cfg: repo and limits.
        dojo_factory: ``task -> Dojo`` context manager; default :func:`default_dojo_factory`.
            Tests pass fakes that return the real ``lean_dojo`` result classes.
        max_restarts: process replacements per theorem before giving up with
            :class:`ProverInfraError`.
        expected_lean: the checker project's toolchain / Mathlib revision; the repo must
            match it (checked by :meth:`preflight`, at the latest on the first theorem).
    """

    def __init__(self, cfg: DojoConfig | None = None, *,
                 dojo_factory: Callable[[ProofTask], Any] | None = None,
                 max_restarts: int = 3, expected_lean: LeanVersion | None = None) -> None:
        super().__init__(max_restarts=max_restarts)
        self.cfg = cfg or DojoConfig()
        self.expected_lean = expected_lean
        self._factory = dojo_factory
        self._cm: Any = None
        self._dojo: Any = None

    def preflight(self) -> None:
        """Resolve the repo and compare its Lean with the checker's now (start-up).

        Raises:
            LeanUnavailable: toolchain or Mathlib revision differ.
        """
        if self._factory is None:
            self._factory = default_dojo_factory(self.cfg, self.expected_lean)

    def _open(self, task: ProofTask) -> tuple[Any, str, int]:
        ld = lean_dojo()
        DojoCrashError, DojoInitError, TacticState = (  # noqa: N806
            ld.DojoCrashError, ld.DojoInitError, ld.TacticState)

        self.preflight()
        assert self._factory is not None
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
