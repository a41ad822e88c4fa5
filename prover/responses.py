"""What Lean said, in the project's own types (independent of the REPL client library).

Every field the Lean REPL (``leanprover-community/repl``) sends back has a home here, checked
against real REPL transcripts (``$VERIMATH_DATA/lean_repl``, Lean v4.33):

* positions (``pos`` / ``endPos``) are relative to the *command string* that was sent:
  ``line`` is 1-based, ``column`` 0-based (a command run in ``env: N`` still starts at line 1);
  messages of a tactic (``ProofStep``) have no real position and are sent as line 0, column 0;
* the sorry warning reads ``declaration uses `sorry``` (backticks) on recent Lean and
  ``declaration uses 'sorry'`` on older Lean; both are recognized;
* a ``ProofStep`` answer carries ``proofStatus`` (``Completed``, ``Incomplete: open goals
  remain``, ``Incomplete: contains sorry``, ``Incomplete: contains metavariable(s)``,
  ``Error: kernel type check failed: ...``), ``proofState`` and ``goals`` (and ``traces``);
* a REPL-level failure is ``{"message": ...}``: ``Lean error:`` + text for a tactic that threw,
  ``Unknown environment.`` / ``Unknown proof state.`` for a state id the process does not hold.

:func:`classify_step` turns a ``ProofStep`` answer into a
:class:`verimath.prover.types.TacticStatus`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from verimath.prover.types import LeanCrash, ProverInfraError, TacticStatus

#: Both spellings of the warning Lean prints for a declaration that uses ``sorry``.
SORRY_WARNINGS = ("declaration uses 'sorry'", "declaration uses `sorry`")
#: ``{"message": ...}`` replies meaning the process lost (or never had) a state: infra.
LOST_STATE = ("Unknown environment.", "Unknown proof state.")
TACTIC_ERROR_PREFIX = "Lean error:"


@dataclass(frozen=True, slots=True)
class LeanMessage:
    """A Lean message.

    Attributes:
        severity: ``error`` | ``warning`` | ``info`` | ``trace``.
        text: the message text (the REPL's ``data``).
        line: 1-based start line within the sent command (0 for tactic messages / unknown).
        column: 0-based start column.
        end_line: 1-based end line (None when Lean sent no ``endPos``).
        end_column: 0-based end column (None when absent).
    """

    severity: str
    text: str
    line: int = 0
    column: int = 0
    end_line: int | None = None
    end_column: int | None = None


@dataclass(frozen=True, slots=True)
class LeanSorry:
    """A ``sorry`` Lean found.

    Attributes:
        goal: the pretty-printed goal at the sorry.
        proof_state: REPL proof-state id to continue from (None when not given).
        line: 1-based line within the command (0 in tactic mode, where Lean sends no ``pos``).
        column: 0-based column.
        end_line: end line or None.
        end_column: end column or None.
    """

    goal: str
    proof_state: int | None = None
    line: int = 0
    column: int = 0
    end_line: int | None = None
    end_column: int | None = None


@dataclass(frozen=True, slots=True)
class LeanTactic:
    """One tactic of an ``allTactics`` answer.

    Attributes:
        tactic: the tactic text.
        goals: pretty-printed goals before it.
        proof_state: REPL proof-state id before it (None when absent).
        line: 1-based start line; column: 0-based start column.
        end_line: end line; end_column: end column.
        used_constants: constants the tactic's proof term uses (``usedConstants``).
    """

    tactic: str
    goals: str
    proof_state: int | None
    line: int
    column: int
    end_line: int
    end_column: int
    used_constants: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LeanResponse:
    """What Lean said about one command or tactic.

    Attributes:
        messages: all messages in order.
        sorries: goals of the ``sorry`` placeholders Lean found (pretty-printed); the full
            records are in ``sorry_info``.
        elapsed_s: wall seconds the request took.
        env: environment id after a command (None for tactics / unknown).
        sorry_info: the sorries with proof-state ids and positions (same order).
        tactics: the ``allTactics`` answer (empty when not asked for).
        proof_status: a tactic's ``proofStatus`` (None for commands).
        proof_state: the proof-state id after a tactic (None for commands).
        goals: goals after a tactic, pretty-printed, one per goal.
        traces: ``trace`` output of a tactic.
        infotree: the raw ``infotree`` JSON when asked for (None otherwise).
        time_s: server-reported run time in seconds (kimina-lean-server), None when absent.
    """

    messages: tuple[LeanMessage, ...] = ()
    sorries: tuple[str, ...] = ()
    elapsed_s: float = 0.0
    env: int | None = None
    sorry_info: tuple[LeanSorry, ...] = ()
    tactics: tuple[LeanTactic, ...] = ()
    proof_status: str | None = None
    proof_state: int | None = None
    goals: tuple[str, ...] = ()
    traces: tuple[str, ...] = ()
    infotree: Any = None
    time_s: float | None = None

    @property
    def errors(self) -> list[str]:
        """Texts of error messages."""
        return [m.text for m in self.messages if m.severity == "error"]

    @property
    def uses_sorry(self) -> bool:
        """Lean found a sorry (placeholder reported or the sorry warning printed)."""
        return bool(self.sorries) or any(m.text.strip() in SORRY_WARNINGS for m in self.messages)


def _pos(p: Any) -> tuple[int, int]:
    return (p.line, p.column) if p is not None else (0, 0)


def _end(p: Any) -> tuple[int | None, int | None]:
    return (p.line, p.column) if p is not None else (None, None)


def to_lean_response(resp: Any, elapsed_s: float = 0.0, time_s: float | None = None
                     ) -> LeanResponse:
    """Convert a ``lean_interact`` ``CommandResponse`` / ``ProofStepResponse``.

    Args:
        resp: the validated response model (``lean_interact.interface``).
        elapsed_s: wall seconds measured by the caller.
        time_s: server-reported seconds, if any.

    Raises:
        LeanCrash: ``resp`` is a ``lean_interact`` ``LeanError`` (``{"message": ...}``, e.g.
            an unknown environment) or not a response at all.
    """
    if not hasattr(resp, "messages"):
        raise LeanCrash(f"REPL error: {getattr(resp, 'message', resp)!r}")
    msgs = tuple(LeanMessage(m.severity, m.data, *_pos(m.start_pos), *_end(m.end_pos))
                 for m in resp.messages)
    sorries = tuple(LeanSorry(s.goal, s.proof_state, *_pos(s.start_pos), *_end(s.end_pos))
                    for s in resp.sorries)
    tactics = tuple(
        LeanTactic(t.tactic, t.goals, t.proof_state, *_pos(t.start_pos), *_pos(t.end_pos),
                   tuple(t.used_constants))
        for t in getattr(resp, "tactics", ()) or ())
    infotree = getattr(resp, "infotree", None)
    if infotree is not None:
        infotree = [n.model_dump(by_alias=True, exclude_none=True) for n in infotree]
    return LeanResponse(
        msgs, tuple(s.goal for s in sorries), elapsed_s, getattr(resp, "env", None), sorries,
        tactics, getattr(resp, "proof_status", None), getattr(resp, "proof_state", None),
        tuple(getattr(resp, "goals", ()) or ()), tuple(getattr(resp, "traces", ()) or ()),
        infotree, time_s)


def parse_repl_json(answer: dict[str, Any], *, tactic: bool = False, elapsed_s: float = 0.0,
                    time_s: float | None = None) -> LeanResponse | str:
    """Validate a raw REPL JSON answer through ``lean_interact``'s models and convert it.

    Args:
        answer: one REPL answer (``{"env": ..., "messages": ...}``, a ``proofStatus`` answer,
            or ``{"message": ...}``).
        tactic: the request was a ``ProofStep`` / proof-state command.
        elapsed_s: wall seconds measured by the caller.
        time_s: server-reported seconds (None when not given).

    Returns:
        The LeanResponse, or the text of a ``{"message": ...}`` REPL error.

    Raises:
        pydantic.ValidationError: the JSON is not a REPL answer.
    """
    from lean_interact.interface import CommandResponse, ProofStepResponse

    if set(answer) == {"message"} or answer == {}:
        return str(answer.get("message", ""))
    model = ProofStepResponse if tactic else CommandResponse
    return to_lean_response(model.model_validate(answer), elapsed_s, time_s)


def classify_step(resp: LeanResponse | str) -> tuple[TacticStatus, str]:
    """What one ``ProofStep`` answer means for search: ``(status, message)``.

    ``resp`` is the converted answer, or the text of a ``{"message": ...}`` reply.

    Returns:
        ERROR for a tactic that threw (``Lean error:``), reported an error (Lean's error
        recovery then says ``Incomplete: contains sorry``), failed the kernel check
        (``Error: ...``) or left metavariables; GIVEN_UP for ``sorry`` / ``admit``; PROVED
        for ``Completed`` with no goals; OPEN when goals remain.

    Raises:
        LeanCrash: the process does not hold the state (``Unknown proof state.`` /
            ``Unknown environment.``) or sent another REPL-level error: the state is lost,
            which says nothing about the tactic.
        ProverInfraError: a ``proofStatus`` this code does not know.
    """
    if isinstance(resp, str):
        if resp.startswith(TACTIC_ERROR_PREFIX):
            return TacticStatus.ERROR, resp[len(TACTIC_ERROR_PREFIX):].strip()
        raise LeanCrash(f"REPL error: {resp!r}")
    status = resp.proof_status or ""
    if resp.errors:
        return TacticStatus.ERROR, resp.errors[0]
    if status.startswith("Error"):
        return TacticStatus.ERROR, status
    if "sorry" in status or resp.sorries:
        return TacticStatus.GIVEN_UP, status
    if status == "Completed":
        if resp.goals:
            raise ProverInfraError(f"proofStatus 'Completed' with goals {list(resp.goals)}")
        return TacticStatus.PROVED, ""
    if "metavariable" in status:
        return TacticStatus.ERROR, status
    if status.startswith("Incomplete") and resp.goals:
        return TacticStatus.OPEN, ""
    raise ProverInfraError(f"unknown proofStatus {status!r} with {len(resp.goals)} goal(s)")
