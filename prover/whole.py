"""Whole-proof generation (DeepSeek-Prover style) with optional error-feedback correction.

For each problem the model writes ``n`` complete proofs from one prompt (header, informal
statement as a doc comment, formal statement). All proofs are audited in parallel by a
:class:`verimath.prover.types.ProofChecker`. With ``rounds > 0``, each attempt the audit rejected
(``WRONG``) is shown to the model again with the checker's reasons, up to ``rounds`` times; an
attempt counts as correct when any of its rounds is. Infrastructure failures (TIMEOUT / ERROR)
are not "corrected": they end the attempt unjudged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from verimath.prover.search import Template, load_template
from verimath.prover.types import ProofChecker, ProofTask
from verimath.records import Problem, Verdict, VerdictStatus, judged

if TYPE_CHECKING:
    from verimath.backends import Backend, Prompt, SamplingParams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WholeProofAttempt:
    """One sampled proof and its corrections.

    Attributes:
        proofs: the model's text in round 0, 1, ... (raw completions).
        verdicts: the audit verdict of each round.
    """

    proofs: tuple[str, ...]
    verdicts: tuple[Verdict, ...]

    @property
    def verdict(self) -> Verdict:
        """The last round's verdict (CORRECT if any round was: correction stops there)."""
        return self.verdicts[-1]

    @property
    def correct(self) -> bool | None:
        """True / False when judged, None when the last round could not be judged."""
        v = self.verdict
        return v.correct if judged(v) else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: rounds with proof and verdict, plus ``correct``."""
        return {"rounds": [{"proof": p, "verdict": v.to_dict()}
                           for p, v in zip(self.proofs, self.verdicts, strict=True)],
                "correct": self.correct}


def informal_prefix(problem: Problem) -> str:
    """The informal statement as a Lean doc comment (``""`` when there is none)."""
    text = problem.informal.strip().replace("-/", "- /")
    return f"/-- {text} -/\n" if text else ""


def task_for(problem: Problem, proof: str = "") -> ProofTask:
    """The ProofTask of ``problem`` (which must have a formal statement)."""
    if not problem.formal_statement:
        raise ValueError(f"problem {problem.id!r} has no formal_statement")
    return ProofTask(problem.formal_statement, problem.header or "", proof, problem.id)


def _feedback(verdict: Verdict) -> str:
    d = verdict.detail
    reasons = list(d.get("errors") or []) or [f["why"] for f in d.get("findings") or []]
    text = "\n".join(r.strip() for r in reasons[:3]) or verdict.reason
    return text.replace("-/", "- /")[:1500]


class WholeProofGenerator:
    """Samples whole proofs and audits them (see module docstring).

    Args:
        backend: a :class:`verimath.backends.Backend`.
        checker: the audit.
        params: sampling settings (``n`` is the number of attempts per problem).
        rounds: correction rounds after the first (0 = none).
        chat: send prompts as a user chat message (instruct models) instead of raw text
            continued by a base/prover model; raw prompts stop at the closing code fence.
        template / fix_template: prompt files (``prover/prompts/whole_proof*.txt``).
    """

    def __init__(self, backend: Backend, checker: ProofChecker, params: SamplingParams, *,
                 rounds: int = 0, chat: bool = False, template: Template | None = None,
                 fix_template: Template | None = None) -> None:
        if rounds < 0:
            raise ValueError("rounds must be >= 0")
        self.backend = backend
        self.checker = checker
        self.params = params if chat else replace(params, stop=(*params.stop, "```"))
        self.rounds = rounds
        self.chat = chat
        self.template = template or load_template("whole_proof")
        self.fix_template = fix_template or load_template("whole_proof_fix")

    def _prompt(self, problem: Problem, previous: tuple[str, Verdict] | None = None) -> Prompt:
        fields = {"header": problem.header or "", "informal_prefix": informal_prefix(problem),
                  "formal_statement": problem.formal_statement or ""}
        if previous is None:
            text = self.template.render(**fields)
        else:
            prev = previous[0].replace("```", "").replace("-/", "- /").strip()
            text = self.fix_template.render(previous=prev, errors=_feedback(previous[1]),
                                            **fields)
        text = text.rstrip() + "\n"  # a raw prompt ends right after ':= by' + newline
        return [{"role": "user", "content": text}] if self.chat else text

    def run(self, problems: Sequence[Problem]) -> list[list[WholeProofAttempt]]:
        """``params.n`` attempts per problem, each audited and corrected up to ``rounds``."""
        outs = self.backend.generate([self._prompt(p) for p in problems], self.params)
        proofs = [[[c.text] for c in per] for per in outs]
        tasks = [task_for(p, c[0]) for p, per in zip(problems, proofs, strict=True) for c in per]
        flat = iter(self.checker.check_many(tasks))
        verdicts = [[[next(flat)] for _ in per] for per in proofs]
        one = replace(self.params, n=1)
        for _ in range(self.rounds):
            todo = [(i, j) for i, per in enumerate(verdicts) for j, vs in enumerate(per)
                    if vs[-1].status is VerdictStatus.WRONG]
            if not todo:
                break
            prompts = [self._prompt(problems[i], (proofs[i][j][-1], verdicts[i][j][-1]))
                       for i, j in todo]
            fixed = self.backend.generate(prompts, one)
            new = [task_for(problems[i], f[0].text) for (i, _), f in zip(todo, fixed, strict=True)]
            for (i, j), f, v in zip(todo, fixed, self.checker.check_many(new), strict=True):
                proofs[i][j].append(f[0].text)
                verdicts[i][j].append(v)
        return [[WholeProofAttempt(tuple(p), tuple(v)) for p, v in zip(pp, vv, strict=True)]
                for pp, vv in zip(proofs, verdicts, strict=True)]
