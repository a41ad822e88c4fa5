"""Typed outcomes and the two protocols proof search and checking are written against.

* :class:`ProofEnv` — tactic-level interaction (DESIGN.md §8): ``start(task) -> GoalState`` and
  ``run_tactic(state, tactic) -> TacticOutcome``. Implemented by the LeanDojo env
  (:mod:`verimath.prover.dojo`), the REPL env (:mod:`verimath.prover.repl`) and
  :class:`verimath.prover.scripted.ScriptedEnv`.
* :class:`ProofChecker` — whole proofs: ``check(task) -> Verdict`` after the full audit
  (:mod:`verimath.prover.audit`). Implemented by :class:`verimath.prover.checker.LeanChecker` (over
  a REPL pool or recorded responses) and :class:`verimath.prover.scripted.ScriptedChecker`.

An expected failure (a tactic Lean rejects, a proof that fails the audit) is a value. A broken
tool is an exception (:class:`ProverInfraError` and subclasses) or, for verdicts, the
``TIMEOUT`` / ``ERROR`` statuses — never ``WRONG``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from verimath.records import Verdict, content_hash


class ProverInfraError(RuntimeError):
    """Lean could not be run or did not answer usably (not a judgment about a proof)."""


class LeanUnavailable(ProverInfraError):
    """No usable Lean toolchain / project; the message says what is missing and how to fix it."""


class LeanTimeout(ProverInfraError):
    """Lean did not answer within its limit; the process was killed, not reused.

    Attributes:
        cpu_s: CPU seconds the Lean process tree spent on the request (None: not measured,
            e.g. a remote server or a test double without a process).
        wall_s: wall seconds the request ran (None: not measured).
    """

    def __init__(self, message: str, *, cpu_s: float | None = None,
                 wall_s: float | None = None) -> None:
        super().__init__(message)
        self.cpu_s, self.wall_s = cpu_s, wall_s


class LeanStarved(ProverInfraError):
    """Lean ran out of wall time without using its CPU budget, even when re-checked.

    The machine was too loaded to decide (could not judge, never a failed proof): a proof that
    itself runs Lean out of its limits burns CPU the whole time.
    """


class LeanCrash(ProverInfraError):
    """The Lean process died or sent unreadable output; it was killed and is not reused."""


@dataclass(frozen=True, slots=True)
class LeanVersion:
    """What a verdict was checked with.

    Attributes:
        toolchain: contents of the project's ``lean-toolchain`` (e.g. ``leanprover/lean4:v4.9.0``),
            or a double's label (``"scripted"``); None when unknown.
        mathlib_rev: Mathlib git revision from ``lake-manifest.json``; None when unknown or when
            the project does not depend on Mathlib.
    """

    toolchain: str | None
    mathlib_rev: str | None

    def to_dict(self) -> dict[str, str | None]:
        """``{"toolchain", "mathlib_rev"}``."""
        return {"toolchain": self.toolchain, "mathlib_rev": self.mathlib_rev}


@dataclass(frozen=True, slots=True)
class ProofTask:
    """A statement to prove and (for checking) a candidate proof.

    Attributes:
        formal_statement: the pinned Lean statement, e.g. ``theorem n (x : ℕ) : x = x := by``.
        header: Lean file header (imports, opens, options) the statement needs.
        proof: the candidate: a proof body (``by ...`` or a term), tactics continuing the
            statement's ``:= by``, or a full Lean snippet restating the theorem (see
            :func:`verimath.prover.audit.split_submission`). ``""`` for search tasks.
        name: problem id (defaults to the declared theorem name).
    """

    formal_statement: str
    header: str = ""
    proof: str = ""
    name: str = ""

    @property
    def statement_hash(self) -> str:
        """Hash of (header, normalized statement): the statement half of the verdict-cache key."""
        from verimath.prover.lean_text import normalize_statement

        return content_hash(self.header.strip(), normalize_statement(self.formal_statement))

    @property
    def proof_hash(self) -> str:
        """Hash of the proof text exactly as given."""
        return content_hash(self.proof)


class TacticStatus(StrEnum):
    """What one tactic did."""

    OPEN = "open"  # Lean accepted it; goals remain (``state`` holds them)
    PROVED = "proved"  # no goals remain
    ERROR = "error"  # Lean rejected the tactic (an expected failure)
    GIVEN_UP = "given_up"  # the tactic closed goals with sorry / admit
    REJECTED = "rejected"  # never sent: the text failed the forbidden-construct screen
    TIMEOUT = "timeout"  # no answer in time; the process was replaced
    CRASHED = "crashed"  # the process died on this tactic; it was replaced


@dataclass(frozen=True, slots=True)
class GoalState:
    """A proof state in search.

    Attributes:
        pp: pretty-printed goals (``""`` when none remain).
        path: tactics applied from the initial state, in order; identifies the state across
            process restarts (an env may replay it).
        num_goals: number of goals in ``pp``.
    """

    pp: str
    path: tuple[str, ...] = ()
    num_goals: int = 1


@dataclass(frozen=True, slots=True)
class TacticOutcome:
    """Result of ``ProofEnv.run_tactic``.

    Attributes:
        status: see :class:`TacticStatus`.
        state: the new state for OPEN and PROVED (PROVED has ``pp == ""``), else None.
        message: Lean's error or info text ("" when none).
        elapsed_s: wall seconds spent in Lean for this tactic.
    """

    status: TacticStatus
    state: GoalState | None = None
    message: str = ""
    elapsed_s: float = 0.0


@runtime_checkable
class ProofEnv(Protocol):
    """Tactic-level interaction used by proof search (DESIGN.md §8)."""

    def start(self, task: ProofTask) -> GoalState:
        """Open the theorem of ``task`` and return its initial state.

        Raises:
            ProverInfraError: Lean could not be started or the statement does not elaborate.
        """
        ...

    def run_tactic(self, state: GoalState, tactic: str) -> TacticOutcome:
        """Apply ``tactic`` to ``state``.

        Infrastructure failure that cannot be recovered from raises
        :class:`ProverInfraError`; everything else is an outcome.
        """
        ...

    def close(self) -> None:
        """Release processes."""
        ...


class CompileStatus(StrEnum):
    """Outcome of elaborating a statement with ``sorry`` as its proof (datagen compile filter)."""

    OK = "ok"  # elaborates; the only complaint is the expected sorry warning
    ERROR = "error"  # Lean reports errors: the statement does not compile (a value)
    REJECTED = "rejected"  # not a single well-formed declaration / forbidden text (no Lean run)
    TIMEOUT = "timeout"  # infrastructure
    INFRA_ERROR = "infra_error"  # infrastructure (crash, bad header, no Lean)


@dataclass(frozen=True, slots=True)
class StatementCheck:
    """Result of :meth:`ProofChecker.check_statement`.

    Attributes:
        status: see :class:`CompileStatus`.
        errors: Lean error messages (or the rejection reason), first ones first.
        goal: the goal Lean reports at the ``sorry`` (None when not elaborated).
        lean: toolchain and Mathlib revision used.
        elapsed_s: wall seconds.
    """

    status: CompileStatus
    errors: tuple[str, ...] = ()
    goal: str | None = None
    lean: LeanVersion = field(default_factory=lambda: LeanVersion(None, None))
    elapsed_s: float = 0.0

    @property
    def compiles(self) -> bool:
        """True only for OK."""
        return self.status is CompileStatus.OK

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "status": str(self.status), "errors": list(self.errors), "goal": self.goal,
            "lean": self.lean.to_dict(), "elapsed_s": self.elapsed_s,
        }


@runtime_checkable
class ProofChecker(Protocol):
    """Whole-proof checking with the full audit (:mod:`verimath.prover.audit`)."""

    @property
    def lean(self) -> LeanVersion:
        """Toolchain and Mathlib revision every verdict is recorded with."""
        ...

    def check(self, task: ProofTask) -> Verdict:
        """Audit ``task.proof`` against ``task.formal_statement``.

        Returns:
            CORRECT when every audit check passes; WRONG naming the failed check in ``reason``
            and ``detail["failed"]``; TIMEOUT / ERROR when Lean could not judge.
        """
        ...

    def check_many(self, tasks: Sequence[ProofTask]) -> list[Verdict]:
        """``check`` of each task (in parallel where the checker can), in input order."""
        ...

    def check_statement(self, formal_statement: str, header: str = "") -> StatementCheck:
        """Does the statement elaborate with ``sorry`` as its proof? (compile filter)."""
        ...

    def close(self) -> None:
        """Release Lean processes and caches."""
        ...

