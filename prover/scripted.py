"""Test doubles for the prover, usable by any package's tests (datagen, rl).

* :class:`ScriptedEnv` — a :class:`verimath.prover.types.ProofEnv` over a small tree of goal states
  and tactics; optional per-tactic cost on a :class:`FakeClock` to exercise wall-clock budgets.
* :class:`ScriptedChecker` — a :class:`verimath.prover.types.ProofChecker` that accepts listed
  proofs. It still runs the real text-level audit, so ``sorry`` / ``native_decide`` / a second copy
  of the theorem are rejected by it exactly as by the real checker (a restated statement is
  discarded, as the real checker does: the listed body is judged for the given statement).
* :class:`RecordedServer` — shaped like ``lean_interact.LeanServer``; answers with recorded REPL
  JSON, validated through ``lean_interact``'s own response models. Put behind the real
  :class:`verimath.prover.repl.ReplPool` and :class:`verimath.prover.checker.LeanChecker` (see
  :func:`recorded_checker`), the whole audit runs on recorded Lean output.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from verimath.prover.audit import AuditReport, Finding, audit_text_only, statement_findings
from verimath.prover.lean_text import StatementError, parse_statement
from verimath.prover.types import (
    CompileStatus,
    GoalState,
    LeanVersion,
    ProofTask,
    ProverInfraError,
    StatementCheck,
    TacticOutcome,
    TacticStatus,
)
from verimath.records import Verdict, VerdictStatus

SCRIPTED_LEAN = LeanVersion("scripted", "scripted")
#: Tree values: the next state's pretty-printed goals ("" = proved) or a non-OPEN status.
Edge = str | TacticStatus


class FakeClock:
    """A monotonic clock that only moves when told to (``clock()`` returns seconds)."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        """The current time in seconds."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        with self._lock:
            self.now += seconds


class ScriptedEnv:
    """A ProofEnv over ``tree[state_pp][tactic] -> next_pp | status``.

    Args:
        tree: for each goal state (pretty-printed), the tactics that do something: the next
            state's goals (``""`` when the tactic closes every goal) or a
            :class:`TacticStatus` (ERROR, GIVEN_UP, TIMEOUT, CRASHED). A tactic not listed is
            an ERROR ("unknown tactic").
        roots: theorem name -> initial state; or one initial state for every theorem.
        clock: advanced by ``tactic_cost_s`` per tactic (to test wall budgets).
        tactic_cost_s: simulated seconds per tactic.
    """

    def __init__(self, tree: Mapping[str, Mapping[str, Edge]], roots: Mapping[str, str] | str,
                 *, clock: FakeClock | None = None, tactic_cost_s: float = 0.0) -> None:
        self.tree = tree
        self.roots = roots
        self.clock = clock
        self.tactic_cost_s = tactic_cost_s
        self.calls: list[tuple[str, str]] = []
        self.started: list[str] = []

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], **kw: Any) -> ScriptedEnv:
        """Build from JSON: ``{"roots": ..., "tree": {pp: {tactic: next_pp | status}}}``.

        ``next_pp`` is ``""`` for a tactic that proves the goal; ``status`` is one of
        ``"error"``, ``"given_up"``, ``"timeout"``, ``"crashed"``.
        """
        statuses = {s.value: s for s in TacticStatus
                    if s not in (TacticStatus.OPEN, TacticStatus.PROVED)}
        tree = {pp: {t: statuses.get(v, v) for t, v in edges.items()}
                for pp, edges in d["tree"].items()}
        return cls(tree, d["roots"], **kw)

    def start(self, task: ProofTask) -> GoalState:
        """The initial state of ``task``'s theorem (by declared name, then ``task.name``)."""
        if isinstance(self.roots, str):
            root = self.roots
        else:
            try:
                name = parse_statement(task.formal_statement).name
            except StatementError as e:
                raise ProverInfraError(f"statement does not parse: {e}") from e
            root = self.roots.get(name) or self.roots.get(task.name) or ""
            if not root:
                raise ProverInfraError(f"no scripted theorem {name!r}")
        self.started.append(task.name or root)
        return GoalState(root, (), max(root.count("⊢"), 1))

    def run_tactic(self, state: GoalState, tactic: str) -> TacticOutcome:
        """Follow the tree (screened like the real envs)."""
        from verimath.prover.audit import screen_tactic

        self.calls.append((state.pp, tactic))
        if self.clock is not None:
            self.clock.advance(self.tactic_cost_s)
        if findings := screen_tactic(tactic):
            return TacticOutcome(TacticStatus.REJECTED, None, findings[0].why)
        edge = self.tree.get(state.pp, {}).get(tactic.strip())
        path = state.path + (tactic,)
        if edge is None:
            return TacticOutcome(TacticStatus.ERROR, None, f"unknown tactic {tactic!r}")
        if isinstance(edge, TacticStatus):
            return TacticOutcome(edge, None, f"scripted {edge.value}")
        if edge == "":
            return TacticOutcome(TacticStatus.PROVED, GoalState("", path, 0))
        return TacticOutcome(TacticStatus.OPEN, GoalState(edge, path, max(edge.count("⊢"), 1)))

    def close(self) -> None:
        """Nothing to release."""


class ScriptedChecker:
    """A ProofChecker that accepts exactly the listed proofs (after the real text audit).

    Args:
        proofs: theorem name -> accepted proof bodies (compared after stripping whitespace
            at both ends); a proof given as the statement's continuation (tactics without
            ``by``) matches ``by``-prefixed entries.
        judge: optional ``task -> VerdictStatus`` overriding ``proofs`` (e.g. to script
            TIMEOUT / ERROR for infrastructure-failure tests).
        compiles: theorem name -> does the statement compile (compile filter); names not
            listed compile when they parse.
        lean: recorded toolchain / Mathlib revision.

    Attributes:
        test_double: always True: records judged by this checker say so in their provenance
            and ``verimath datagen`` refuses to export rows it verified unless told to.
    """

    name = "scripted"
    test_double = True

    def __init__(self, proofs: Mapping[str, Iterable[str]] | None = None, *,
                 judge: Callable[[ProofTask], VerdictStatus] | None = None,
                 compiles: Mapping[str, bool] | None = None,
                 lean: LeanVersion = SCRIPTED_LEAN) -> None:
        self.proofs = {k: {p.strip() for p in v} for k, v in (proofs or {}).items()}
        self.judge = judge
        self.compiles = dict(compiles or {})
        self._lean = lean
        self.calls: list[ProofTask] = []
        self._lock = threading.Lock()

    @property
    def lean(self) -> LeanVersion:
        """What verdicts are recorded with."""
        return self._lean

    def check(self, task: ProofTask) -> Verdict:
        """Text audit first (real), then the script."""
        with self._lock:
            self.calls.append(task)
        prepared = audit_text_only(task)
        if isinstance(prepared, AuditReport):
            return prepared.to_verdict(task, self._lean)
        if self.judge is not None:
            status = self.judge(task)
            if status is not VerdictStatus.CORRECT:
                infra = {VerdictStatus.TIMEOUT: "timeout", VerdictStatus.ERROR: "scripted error"}
                if status in infra:
                    return AuditReport(infra=infra[status]).to_verdict(task, self._lean)
                return AuditReport((Finding("lean_errors", "scripted rejection"),)
                                   ).to_verdict(task, self._lean)
            return self._accept(task)
        name = parse_statement(task.formal_statement).name
        body = prepared.body
        accepted = self.proofs.get(name, set())
        if body in accepted or body.removeprefix("by\n").strip() in accepted:
            return self._accept(task)
        return AuditReport((Finding("lean_errors", "scripted: not an accepted proof"),),
                           ("forbidden_construct", "statement_pinning")
                           ).to_verdict(task, self._lean)

    def _accept(self, task: ProofTask) -> Verdict:
        return AuditReport(passed=("forbidden_construct", "statement_pinning", "lean_errors",
                                   "sorry", "axioms"),
                           axioms=("propext",)).to_verdict(task, self._lean)

    def check_many(self, tasks: Sequence[ProofTask]) -> list[Verdict]:
        """``check`` of each task in order."""
        return [self.check(t) for t in tasks]

    def close(self) -> None:
        """Nothing to release."""

    def check_statement(self, formal_statement: str, header: str = "") -> StatementCheck:
        """REJECTED for malformed statements, else the script (default: compiles)."""
        bad = statement_findings(formal_statement)
        if bad:
            return StatementCheck(CompileStatus.REJECTED, tuple(bad), None, self._lean)
        name = parse_statement(formal_statement).name
        if self.compiles.get(name, True):
            return StatementCheck(CompileStatus.OK, (), None, self._lean)
        return StatementCheck(CompileStatus.ERROR, ("scripted: does not compile",), None,
                              self._lean)


Responder = Callable[[Any], "dict[str, Any] | BaseException"]


class RecordedServer:
    """Shaped like ``lean_interact.LeanServer``: answers requests from recorded REPL JSON.

    Args:
        respond: ``request -> raw REPL JSON dict`` or an exception to raise (``TimeoutError``
            as LeanServer raises on timeout, ``ConnectionAbortedError`` for a crash, ...).
            Header commands (``Command`` without ``env``) get ``{"env": 0}`` unless
            ``respond`` answers them (return None to use the default).
    """

    def __init__(self, respond: Callable[[Any], Any]) -> None:
        self.respond = respond
        self.alive = True
        self.requests: list[Any] = []
        self.killed = False

    def run(self, request: Any, *, timeout: float | None = None) -> Any:
        """Validate the recorded answer through ``lean_interact``'s models, like LeanServer."""
        from lean_interact.interface import (
            Command,
            CommandResponse,
            LeanError,
            ProofStep,
            ProofStepResponse,
        )

        if not self.alive:
            raise ChildProcessError("The Lean server is not running.")
        self.requests.append(request)
        answer = self.respond(request)
        if answer is None and isinstance(request, Command) and request.env is None:
            answer = {"env": 0}
        if isinstance(answer, BaseException):
            if isinstance(answer, (TimeoutError, ConnectionError)):
                self.kill()
            raise answer
        if set(answer) == {"message"}:
            return LeanError.model_validate(answer)
        if isinstance(request, ProofStep):
            return ProofStepResponse.model_validate(answer)
        return CommandResponse.model_validate(answer)

    def kill(self) -> None:
        """Mark dead (like killing the process)."""
        self.alive = False
        self.killed = True

    def is_alive(self) -> bool:
        """Alive until killed."""
        return self.alive


def recorded_checker(respond: Callable[[Any], Any], *, lean: LeanVersion | None = None,
                     workers: int = 1, max_uses: int = 200, **kw: Any) -> Any:
    """A real LeanChecker over a real ReplPool whose servers replay recorded answers.

    The servers are :class:`RecordedServer` instances answering with ``respond``; ``kw`` goes
    to :class:`verimath.prover.checker.LeanChecker` (``cache``, ``crash_retries``, ``timeout_s``).
    """
    from verimath.prover.checker import LeanChecker
    from verimath.prover.repl import ReplConfig, ReplPool

    pool = ReplPool(ReplConfig(workers=workers, max_uses=max_uses),
                    lean or LeanVersion("leanprover/lean4:v4.9.0", "recorded"),
                    server_factory=lambda: RecordedServer(respond))
    return LeanChecker(pool, **kw)
