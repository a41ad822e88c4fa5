"""Informal solving: N PoT/TIR rollouts per problem, verified, kept as SFT trajectories.

An attempt is kept when a verifier accepts it:

* the problem has a known answer: the grader (math-verify) says CORRECT
  (``verified_by="gold"``);
* no known answer: self-consistency (Wang et al. 2023, "Self-Consistency Improves Chain of
  Thought Reasoning"): answers are grouped by grader equivalence and the largest group is kept
  when it holds at least ``majority`` of the ``n`` samples and at least ``min_votes``
  (``verified_by="self_consistency"``; the verdict says how many agreed).

Everything else is rejected with a reason: ``wrong``, ``no_answer``, ``sandbox_error``
(infrastructure: never counted wrong), ``grader_timeout`` / ``grader_error`` (could not judge;
a problem with any of these three is not final: a resume solves it again, see
``DatagenConfig.infra_retries``),
``bad_gold``, ``truncated`` / ``tool_limit``, ``duplicate_attempt``, ``over_cap``, ``no_majority``.

The stage is pipelined (see :mod:`verimath.datagen.runner`): ``generate`` runs the rollouts of a
batch (model generation plus sandbox execution), ``verify`` grades it on the runner's worker thread
while the next batch generates.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from verimath.datagen.config import stage_settings
from verimath.datagen.dedup import normalize_text
from verimath.datagen.export import export_row
from verimath.datagen.runner import Item, Outcome, reject
from verimath.datagen.stages import item_problem
from verimath.jobs import fingerprint_of
from verimath.reasoning.grading import grade_attempts
from verimath.records import Attempt, Problem, Verdict, VerdictStatus, content_hash, judged

if TYPE_CHECKING:
    from verimath.backends import Backend, SamplingParams
    from verimath.datagen.config import DatagenConfig
    from verimath.reasoning.grading import Grader
    from verimath.reasoning.sandbox import Sandbox

log = logging.getLogger(__name__)

_STATUS_REASON = {
    VerdictStatus.WRONG: "wrong",
    VerdictStatus.NO_ANSWER: "no_answer",
    VerdictStatus.UNVERIFIABLE: "unverifiable",
    VerdictStatus.BAD_GOLD: "bad_gold",
    VerdictStatus.TIMEOUT: "grader_timeout",
    VerdictStatus.ERROR: "grader_error",
}


class TimedBackend:
    """Wraps a Backend and adds up the wall time spent in ``generate`` (thread-safe).

    The stage code sees an ordinary Backend; ``seconds`` and ``calls`` feed the benchmark's
    generation vs verification split.
    """

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.calls = 0
        self._lock = threading.Lock()

    def generate(self, prompts: list[Any], params: SamplingParams) -> list[list[Any]]:
        """``inner.generate`` with timing."""
        t = time.perf_counter()
        try:
            return self.inner.generate(prompts, params)
        finally:
            with self._lock:
                self.seconds += time.perf_counter() - t
                self.calls += 1

    def render(self, prompt: Any) -> str:
        """``inner.render``."""
        return self.inner.render(prompt)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class SolveStage:
    """PoT/TIR solving with verification (see the module docstring).

    Args:
        cfg: the run config (``backend``, ``rollout``, ``sandbox``, ``grader``, ``solve``).
        comps: prebuilt components (``backend``, ``sandbox``, ``grader``); the missing ones are
            built in :meth:`prepare` (only when there is work left) and closed by :meth:`close`.
    """

    name = "solve"
    unit_in = "problems"
    unit_out = "trajectories"

    def __init__(self, cfg: DatagenConfig, comps: Any) -> None:
        from verimath.reasoning.grading import GRADER_VERSION
        from verimath.reasoning.rollout import Strategy, load_prompt

        self.cfg = cfg
        self.comps = comps
        self.template = load_prompt(cfg.rollout.strategy, cfg.rollout.prompt_file)
        self.batch_size = cfg.rollout.batch_problems
        self.params = self._params()
        self.needs_sandbox = cfg.rollout.strategy is not Strategy.COT
        self.backend: TimedBackend | None = None
        self.sandbox: Sandbox | None = comps.sandbox
        self.grader: Grader | None = comps.grader
        self._owned: list[Any] = []
        self.timing: defaultdict[str, float] = defaultdict(float)
        b = cfg.backend
        model = getattr(comps.backend, "model_id", None) or b.model
        self.settings = stage_settings(
            cfg, ("backend", "rollout", "sandbox", "grader", "solve"), model=model,
            prompt_hash=self.template.hash, grader_version=GRADER_VERSION)
        self.fingerprint = fingerprint_of(self.settings)
        self._provenance: dict[str, Any] | None = None

    def _params(self) -> SamplingParams:
        from verimath.backends import SamplingParams

        s = self.cfg.solve
        return SamplingParams(n=s.n, temperature=s.temperature, top_p=s.top_p,
                              max_tokens=s.max_tokens, seed=s.seed)

    def prepare(self, items: list[Item], todo: list[Item]) -> None:
        """Build the components that were not passed in (model, sandbox pool, grader)."""
        from verimath.backends import load_backend
        from verimath.reasoning.service.factory import make_grader, make_sandbox

        if self.backend is None:
            inner = self.comps.backend
            if inner is None:
                inner = load_backend(self.cfg.backend)
                self._owned.append(inner)
            self.backend = TimedBackend(inner)
        if self.sandbox is None and self.needs_sandbox:
            self.sandbox = make_sandbox(self.cfg.sandbox)
            self._owned.append(self.sandbox)
        if self.grader is None:
            self.grader = make_grader(self.cfg.grader)
            self._owned.append(self.grader)

    def close(self) -> None:
        """Close what this stage built; record the model time."""
        if self.backend is not None:
            self.timing["model_generate_s"] = self.backend.seconds
        for o in reversed(self._owned):
            o.close()
        self._owned.clear()

    @property
    def provenance(self) -> dict[str, Any]:
        """Provenance copied into every trajectory (deterministic: no timings, no dates)."""
        if self._provenance is None:
            from verimath.reasoning.grading import GRADER_VERSION

            b = self.cfg.backend
            self._provenance = {
                "model": getattr(self.comps.backend or (self.backend and self.backend.inner),
                                 "model_id", b.model),
                "backend": getattr(self.comps.backend, "name", None) or b.backend,
                "strategy": str(self.cfg.rollout.strategy),
                "sampling": asdict(self.params),
                "prompt_hash": self.template.hash,
                "grader_version": GRADER_VERSION,
                "isolation": getattr(self.sandbox, "isolation", None),
                "max_tool_calls": self.cfg.rollout.max_tool_calls,
                "stage_fingerprint": self.fingerprint,
            }
        return self._provenance

    def manifest_extra(self) -> dict[str, Any]:
        """Solve-stage entries for the run manifest."""
        from verimath.reasoning.grading import GRADER_VERSION

        return {"solve": {"fingerprint": self.fingerprint, "prompt_hash": self.template.hash,
                          "grader_version": GRADER_VERSION,
                          "isolation": getattr(self.sandbox, "isolation", None),
                          "sampling": asdict(self.params)}}

    def generate(self, items: list[Item]) -> list[list[Attempt]]:
        """Roll out ``n`` attempts for each problem of the batch (model + sandbox)."""
        from verimath.reasoning.rollout import rollout

        problems = [item_problem(it) for it in items]
        cfg = replace(self.cfg.rollout, batch_problems=max(1, len(problems)))
        t = time.perf_counter()
        assert self.backend is not None, "prepare() builds the backend"
        out = rollout(self.backend, problems, self.params, cfg, self.sandbox)  # type: ignore[arg-type]
        self.timing["rollout_s"] += time.perf_counter() - t
        return out

    def process(self, items: list[Item]) -> list[Outcome]:
        """Generate and verify in one go (when not pipelined)."""
        return self.verify(items, self.generate(items))

    def verify(self, items: list[Item], attempts: list[list[Attempt]]) -> list[Outcome]:
        """Grade every attempt and turn the accepted ones into trajectories."""
        t = time.perf_counter()
        problems = [item_problem(it) for it in items]
        gold_pairs = [(p.answer, a) for p, per in zip(problems, attempts, strict=True)
                      if p.answer is not None for a in per if _gradable(a)]
        assert self.grader is not None
        verdicts = iter(grade_attempts(self.grader, gold_pairs) if gold_pairs else [])
        outs = []
        for it, p, per in zip(items, problems, attempts, strict=True):
            if p.answer is not None:
                vs = [next(verdicts) if _gradable(a) else None for a in per]
                outs.append(self._with_gold(it, p, per, vs))
            else:
                outs.append(self._self_consistency(it, p, per))
        self.timing["grade_s"] += time.perf_counter() - t
        return outs

    # ------------------------------------------------------------------ helpers

    def _pre_reject(self, a: Attempt) -> str | None:
        if a.finish_reason == "error":
            return "sandbox_error"
        if a.finish_reason in self.cfg.solve.drop_finish_reasons:
            return "truncated" if a.finish_reason == "length" else a.finish_reason
        if a.answer is None:
            return "no_answer"
        return None

    def _with_gold(self, it: Item, p: Problem, attempts: list[Attempt],
                   verdicts: list[Verdict | None]) -> Outcome:
        accepted: list[tuple[int, Attempt, dict[str, Verdict]]] = []
        rejected: list[tuple[int, Attempt, str]] = []
        for j, (a, v) in enumerate(zip(attempts, verdicts, strict=True)):
            if v is None:
                rejected.append((j, a, self._pre_reject(a) or "no_answer"))
                continue
            pre = self._pre_reject(a)
            if v.correct and pre is None:
                accepted.append((j, a, {"grader": v}))
            else:
                rejected.append((j, a, pre or _STATUS_REASON.get(v.status, str(v.status))))
        graded = {j: v for j, v in enumerate(verdicts) if v is not None}
        return self._outcome(it, p, accepted, rejected, "gold", graded=graded)

    def _self_consistency(self, it: Item, p: Problem, attempts: list[Attempt]) -> Outcome:
        s = self.cfg.solve
        rejected: list[tuple[int, Attempt, str]] = []
        voters: list[tuple[int, Attempt]] = []
        for j, a in enumerate(attempts):
            pre = self._pre_reject(a)
            if pre is None or (pre in ("truncated", "tool_limit") and a.answer is not None):
                voters.append((j, a))  # a truncated attempt still votes, it is not kept
            if pre is not None:
                rejected.append((j, a, pre))
        groupings = self._group_answers([a.answer for _, a in voters])  # type: ignore[misc]
        votes_of = [_vote(g, s.n, s.majority, s.min_votes) for g in groupings]
        ok, top, votes, share = votes_of[0]
        unjudged: set[int] = set()  # voters whose fate hangs on a grader TIMEOUT/ERROR
        if len(votes_of) > 1:
            if any(v[0] != ok for v in votes_of):
                ok, top = False, []  # an unjudged comparison decides the vote: no verdict
                unjudged = set(range(len(voters)))
            elif ok:  # passes whichever way: keep what every settlement agrees on
                common = set.intersection(*(set(v[1]) for v in votes_of))
                unjudged = set().union(*(set(v[1]) for v in votes_of)) - common
                top = sorted(common)
                ok = ok and bool(top)
                votes, share = len(top), len(top) / s.n
        accepted: list[tuple[int, Attempt, dict[str, Verdict]]] = []
        winners = {voters[i][0] for i in top} if ok else set()
        answer = voters[top[0]][1].answer if top else None
        done = {j for j, _, _ in rejected}
        for i, (j, a) in enumerate(voters):
            if j in done:
                continue
            if j in winners:
                v = Verdict(VerdictStatus.CORRECT,
                            reason=f"self-consistency: {votes}/{s.n} samples agree on {answer}",
                            detail={"answer": answer, "votes": votes, "n": s.n,
                                    "share": round(share, 4), "threshold": s.majority})
                accepted.append((j, a, {"self_consistency": v}))
            elif i in unjudged:
                rejected.append((j, a, "grader_unjudged"))
            else:
                rejected.append((j, a, "minority_answer" if ok else "no_majority"))
        rejected.sort(key=lambda r: r[0])
        out = self._outcome(it, p, accepted, rejected, "self_consistency", sc_answer=answer)
        if unjudged:
            out.unjudged = sorted({*out.unjudged, "grader_unjudged_vote"})
        return out

    def _group_answers(self, answers: list[str]) -> list[list[list[int]]]:
        """Groupings of ``answers`` as maj@k groups them, with grader equivalence.

        One grouping when every comparison was judged. A comparison the grader could not
        judge (TIMEOUT, ERROR) is neither "equal" nor "not equal": one grouping is returned
        per way of settling the unjudged comparisons (all of them when there are at most
        :data:`_MAX_UNJUDGED`, else only the two extremes), and the vote counts only what all
        of them agree on.
        """
        from verimath.reasoning.metrics import group_answers

        assert self.grader is not None
        grader = self.grader
        verdicts: dict[tuple[str, str], Verdict] = {}

        def ask(pairs: object) -> list[bool]:
            asked = list(pairs)  # type: ignore[call-overload]
            todo = [pr for pr in dict.fromkeys(asked) if pr not in verdicts]
            for pr, v in zip(todo, grader.grade_many(todo, extract=False), strict=True):
                verdicts[pr] = v
            return [verdicts[pr].correct for pr in asked]

        first = group_answers(answers, equivalent=ask)  # unjudged pairs count as "not equal"
        open_ = [pr for pr, v in verdicts.items() if _unjudged(v)]
        if not open_:
            return [first]
        if len(open_) <= _MAX_UNJUDGED:
            settle = [{pr for b, pr in enumerate(open_) if mask >> b & 1}
                      for mask in range(1 << len(open_))]
        else:
            settle = [set(), set(open_)]
        return [group_answers(answers, equivalent=lambda pairs, extra=extra: [
            verdicts[pr].correct or pr in extra for pr in pairs]) for extra in settle]

    def _outcome(self, it: Item, p: Problem,
                 accepted: list[tuple[int, Attempt, dict[str, Verdict]]],
                 rejected: list[tuple[int, Attempt, str]], verified_by: str,
                 sc_answer: str | None = None,
                 graded: dict[int, Verdict] | None = None) -> Outcome:
        from verimath.reasoning.rollout import to_trajectory

        messages = self.template.messages(p)
        kept: list[Item] = []
        rej: list[dict[str, Any]] = []
        seen: set[str] = set()
        for j, a, verdicts in sorted(accepted, key=lambda r: r[0]):
            norm = normalize_text(a.text)
            if norm in seen:
                rej.append(self._attempt_reject(it, p, j, a, "duplicate_attempt"))
                continue
            if len(kept) >= self.cfg.solve.max_per_problem:
                rej.append(self._attempt_reject(it, p, j, a, "over_cap"))
                continue
            seen.add(norm)
            prov = {**self.provenance, "sample_index": j, "finish_reason": a.finish_reason,
                    "completion_tokens": a.completion_tokens,
                    "tool_calls": [t.to_dict() for t in a.tool_calls]}
            traj = to_trajectory(p, messages, a, verdicts, prov)
            key = content_hash(it["key"], self.fingerprint, j, a.text)
            answer = p.answer if verified_by == "gold" else sc_answer
            kept.append(export_row(traj, kind=str(self.cfg.rollout.strategy),
                                   verified_by=verified_by, key=key, answer=answer))
        for j, a, reason in rejected:
            rej.append(self._attempt_reject(it, p, j, a, reason, (graded or {}).get(j)))
        if not kept:
            counts = Counter(r["reason"] for r in rej)
            why = ", ".join(f"{n} {r}" for r, n in counts.most_common())
            rej.append(reject({"key": it["key"], "problem": p.to_dict()},
                              f"no verified attempt: {why or 'no attempts'}", self.unit_in))
        # a problem with an attempt rejected for an infrastructure reason is not final: the
        # engine marks it unjudged (verimath.datagen.runner.INFRA_REASONS), solved again on resume
        return Outcome(kept=kept, rejected=rej)

    def _attempt_reject(self, it: Item, p: Problem, j: int, a: Attempt, reason: str,
                        verdict: Verdict | None = None) -> dict[str, Any]:
        """A rejected attempt's entry; ``verdict``: the grader's, when it graded the attempt."""
        rec: dict[str, Any] = {"key": content_hash(it["key"], self.fingerprint, j, a.text),
                               "problem_id": p.id, "sample_index": j, "attempt": a.to_dict()}
        if verdict is not None:
            rec["verdict"] = verdict.to_dict()
        return reject(rec, reason, "attempts")


def _unjudged(v: Verdict) -> bool:
    """A pairwise comparison that says nothing about equivalence (the one predicate).

    BAD_GOLD here means the first answer does not parse: the two differ as texts and as math,
    which is a judgment.
    """
    return not judged(v) and v.status is not VerdictStatus.BAD_GOLD


_MAX_UNJUDGED = 6  # unjudged comparisons settled exhaustively (2**6 groupings) in a vote


def _vote(groups: list[list[int]], n: int, majority: float,
          min_votes: int) -> tuple[bool, list[int], int, float]:
    """``(passed, top group, votes, share)`` of one grouping (ties and thresholds as configured)."""
    ranked = sorted(groups, key=len, reverse=True)
    top = ranked[0] if ranked else []
    votes = len(top)
    share = votes / n
    tie = len(ranked) > 1 and len(ranked[1]) == votes
    return bool(top) and share >= majority and votes >= min_votes and not tie, top, votes, share


def _gradable(a: Attempt) -> bool:
    return a.answer is not None and a.finish_reason != "error"
