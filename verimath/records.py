"""Core records shared by every stage: Problem, Attempt, Verdict, Trajectory.

All records are frozen dataclasses with ``to_dict`` / ``from_dict`` for JSONL. ``from_dict``
raises :class:`RecordError` naming the record and the field when input is malformed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class RecordError(ValueError):
    """A record is malformed. The message names the record (id or line) and the field."""

    def __init__(self, where: str, field_name: str, problem: str) -> None:
        super().__init__(f"{where}: field {field_name!r}: {problem}")
        self.where = where
        self.field_name = field_name
        self.problem = problem


def content_hash(*parts: object, length: int = 16) -> str:
    """Stable hex digest of JSON-serialisable parts (sha256, first ``length`` hex chars)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]


class VerdictStatus(StrEnum):
    """Outcome of a grader or prover audit.

    Judged (a decision about the model's output; see :func:`judged`): ``CORRECT``, ``WRONG``,
    ``NO_ANSWER`` and ``UNVERIFIABLE`` (the answer reproducibly ran the verifier out of its
    limits: a grader comparison over its CPU time or memory, or a parser crash, twice on fresh
    workers while the gold alone evaluates fine; counted as not correct everywhere, reward 0.0).
    ``BAD_GOLD``, ``TIMEOUT`` and ``ERROR`` mean "could not judge": never counted as correct or
    wrong; reward functions map them to ``None`` (sample skipped), not to 0.0.
    """

    CORRECT = "correct"
    WRONG = "wrong"
    NO_ANSWER = "no_answer"
    UNVERIFIABLE = "unverifiable"
    BAD_GOLD = "bad_gold"
    TIMEOUT = "timeout"
    ERROR = "error"

    @property
    def judged(self) -> bool:
        """True when the verifier reached a decision (CORRECT, WRONG, NO_ANSWER, UNVERIFIABLE)."""
        return self in _JUDGED_STATUSES


_JUDGED_STATUSES = frozenset({VerdictStatus.CORRECT, VerdictStatus.WRONG,
                              VerdictStatus.NO_ANSWER, VerdictStatus.UNVERIFIABLE})


def judged(outcome: Any) -> bool:
    """The one "judged or could-not-judge" predicate (``verimath.reasoning`` docstring).

    Every consumer (metrics, votes, rewards, search, datagen stages, eval and prove records)
    asks this function, never a status list of its own.

    Args:
        outcome: a :class:`Verdict` or :class:`VerdictStatus` (grader or proof audit), a
            sandbox ``ExecResult`` (judged unless ``infra_failure``: SANDBOX_ERROR or a lost
            interpreter; the program's own timeout / memory / crash is a judgment), or any
            result with a boolean ``judged`` attribute (``prover.search.SearchResult``).
            None (no outcome at all: a verifier call abandoned at its deadline) is not judged.

    Returns:
        True when the outcome is a decision about the model's output.

    Raises:
        TypeError: an object this rule does not know (a code bug, not "could not judge").
    """
    if outcome is None:
        return False
    if isinstance(outcome, VerdictStatus):
        return outcome.judged
    if isinstance(outcome, Verdict):
        return outcome.status.judged
    infra = getattr(outcome, "infra_failure", None)
    if isinstance(infra, bool):
        return not infra
    flag = getattr(outcome, "judged", None)
    if isinstance(flag, bool):
        return flag
    raise TypeError(f"judged(): no judged/could-not-judge rule for {type(outcome).__name__}")


@dataclass(frozen=True, slots=True)
class Verdict:
    """A verifier's decision.

    Attributes:
        status: the outcome.
        reason: a short human-readable reason (e.g. "math-verify: 1/2 == 0.5").
        detail: verifier-specific extras (extracted answers, axioms, timings); JSON-serialisable.
    """

    status: VerdictStatus
    reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def correct(self) -> bool:
        """True only for CORRECT."""
        return self.status is VerdictStatus.CORRECT

    @property
    def judged(self) -> bool:
        """See :func:`judged`: a decision about the model's output, not "could not judge"."""
        return self.status.judged

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``{"status", "reason", "detail"}``."""
        return {"status": str(self.status), "reason": self.reason, "detail": self.detail}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "verdict") -> Verdict:
        """Inverse of :meth:`to_dict`. Raises RecordError on an unknown status."""
        try:
            status = VerdictStatus(d["status"])
        except (KeyError, ValueError) as e:
            raise RecordError(where, "status", f"expected one of {list(VerdictStatus)}") from e
        return cls(status, str(d.get("reason", "")), dict(d.get("detail") or {}))


@dataclass(frozen=True, slots=True)
class Problem:
    r"""A math problem, informal and/or formal.

    Attributes:
        id: stable identifier (from the source, or a content hash of the text).
        source: dataset name or path the problem came from.
        informal: natural-language statement ("" for purely formal problems).
        answer: gold final answer (already extracted, e.g. "18" or "\\frac{1}{2}"); None when
            unknown (then self-consistency may be used).
        formal_statement: Lean 4 theorem statement ending in ``:=``; None for informal problems.
        header: Lean file header (imports, opens) the statement needs; None when not formal.
        meta: source-specific extras (split, level, full gold solution...).
    """

    id: str
    source: str
    informal: str
    answer: str | None = None
    formal_statement: str | None = None
    header: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of all fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "problem") -> Problem:
        """Build from a dict; raises RecordError naming ``where`` and the bad field."""
        if not isinstance(d, dict):
            raise RecordError(where, "<record>", f"expected a JSON object, got {type(d).__name__}")
        for name in ("id", "source"):
            if not isinstance(d.get(name), str) or not d.get(name):
                raise RecordError(where, name, "missing or not a non-empty string")
        for name in ("informal",):
            if not isinstance(d.get(name, ""), str):
                raise RecordError(where, name, "not a string")
        for name in ("answer", "formal_statement", "header"):
            if d.get(name) is not None and not isinstance(d[name], str):
                raise RecordError(where, name, "not a string or null")
        return cls(
            id=d["id"],
            source=d["source"],
            informal=d.get("informal", ""),
            answer=d.get("answer"),
            formal_statement=d.get("formal_statement"),
            header=d.get("header"),
            meta=dict(d.get("meta") or {}),
        )


class SpanKind(StrEnum):
    """Who produced a span of a trajectory: the model (trained on) or a tool (masked)."""

    MODEL = "model"
    TOOL = "tool"


@dataclass(frozen=True, slots=True)
class Span:
    """A contiguous piece of a completion: ``text`` produced by ``kind``."""

    kind: SpanKind
    text: str

    def to_dict(self) -> dict[str, Any]:
        """``{"kind", "text"}``."""
        return {"kind": str(self.kind), "text": self.text}


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One sandbox execution inside a rollout.

    Attributes:
        code: the program or cell run.
        status: the ``ExecStatus`` value as a string.
        output: what was shown to the model (stdout, or the error), already truncated;
            display text, never read as an answer.
        wall_time_s: seconds of wall-clock time.
        stdout: the program's raw stdout (answers are read from it); None when not recorded.
    """

    code: str
    status: str
    output: str
    wall_time_s: float
    stdout: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """All fields as a dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One sampled solution to a problem.

    Attributes:
        text: the full completion (model text plus tool outputs, in order).
        spans: ``text`` split into model and tool spans; ``"".join(s.text for s in spans) == text``.
        tool_calls: sandbox executions in order.
        answer: the extracted final answer; None when none could be extracted.
        finish_reason: "stop", "length", "tool_limit" or "error".
        completion_tokens: tokens generated by the model (tool output excluded).
    """

    text: str
    spans: tuple[Span, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    answer: str | None = None
    finish_reason: str = "stop"
    completion_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "text": self.text,
            "spans": [s.to_dict() for s in self.spans],
            "tool_calls": [t.to_dict() for t in self.tool_calls],
            "answer": self.answer,
            "finish_reason": self.finish_reason,
            "completion_tokens": self.completion_tokens,
        }


@dataclass(frozen=True, slots=True)
class Trajectory:
    """A problem, the chat that solved it, and the verifiers' verdicts: one SFT record.

    Attributes:
        problem: the source problem.
        messages: chat messages ``[{"role", "content"}]``; the assistant turn is the attempt text.
        spans: model/tool spans of the assistant turn (tool spans are masked in SFT and GRPO).
        verdicts: verifier name -> Verdict.
        provenance: model, sampling parameters, prompt hash, grader/prover versions, seed, ...
    """

    problem: Problem
    messages: tuple[dict[str, str], ...]
    spans: tuple[Span, ...]
    verdicts: dict[str, Verdict]
    provenance: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "problem": self.problem.to_dict(),
            "messages": list(self.messages),
            "spans": [s.to_dict() for s in self.spans],
            "verdicts": {k: v.to_dict() for k, v in self.verdicts.items()},
            "provenance": self.provenance,
        }
