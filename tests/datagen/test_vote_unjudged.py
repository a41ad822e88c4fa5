"""Self-consistency with a grader that cannot judge: unjudged comparisons never decide a vote.

An answer such as ``9^{9^{9^9}}`` (a C big-integer power) hangs a real grader's workers on every
try: that is the answer's doing, a judged comparison (issue 18), so it is an ordinary minority
answer. What the grader truly cannot judge (a lost worker: :class:`LosingGrader`, a real grader
whose answers for ``LOST`` come back as could-not-judge ``ERROR``) never decides a vote.
"""

from __future__ import annotations

import pytest

from tests.datagen.helpers import informal_config
from verimath.datagen.pipeline import Components
from verimath.datagen.solve import SolveStage
from verimath.reasoning.grading import Grader, GraderConfig
from verimath.records import Attempt, Problem, Verdict, VerdictStatus

HANG_A = r"9^{9^{9^9}}"
HANG_B = r"9^{9^{9^{9}}}"  # another spelling: not grouped by text, so the grader is asked


@pytest.fixture(scope="module")
def grader():
    with Grader(GraderConfig(timeout_s=1.0, workers=2)) as g:
        yield g


class LosingGrader:
    """Test double of an infrastructure failure: the real grader, except that any pair with
    ``LOST`` in it comes back ERROR (a worker lost on every try), as a dead grader's would."""

    def __init__(self, real: Grader) -> None:
        self.real = real
        self.config = real.config

    def grade_many(self, pairs, *, extract=True):
        pairs = list(pairs)
        out = self.real.grade_many([p for p in pairs if "LOST" not in f"{p[0]}{p[1]}"],
                                   extract=extract)
        it = iter(out)
        return [Verdict(VerdictStatus.ERROR, "grader worker died (test double)")
                if "LOST" in f"{p[0]}{p[1]}" else next(it) for p in pairs]

    def grade(self, gold, pred, *, extract=True):
        return self.grade_many([(gold, pred)], extract=extract)[0]


def _stage(tmp_path, grader, n):
    cfg = informal_config(tmp_path / "out", str(tmp_path / "in.jsonl"), n=n, majority=0.5)
    return SolveStage(cfg, Components(grader=grader))


def _run(stage, answers):
    p = Problem(id="p", source="t", informal="How many?")
    item = {"key": "k", "problem": p.to_dict()}
    attempts = [Attempt(text=f"sample {j}: {a}", answer=a) for j, a in enumerate(answers)]
    return stage._self_consistency(item, p, attempts)


def _reasons(outcome):
    return sorted(r["reason"] for r in outcome.rejected if r.get("unit") == "attempts")


def test_answers_that_hang_the_grader_are_judged_minority_answers(tmp_path, grader):
    # every comparison of "12" with HANG_A runs the grader out of its CPU time twice: judged
    # "not equal" (UNVERIFIABLE / BAD_GOLD), so the hang is a minority answer, not unjudged
    out = _run(_stage(tmp_path, grader, 4), ["12", "12", "12.0", HANG_A])
    assert [r["answer"] for r in out.kept] == ["12"] * 3
    assert _reasons(out) == ["minority_answer"] and out.unjudged == []
    # two spellings of the hang are equal to each other (sympy compares them structurally)
    out = _run(_stage(tmp_path, grader, 4), ["12", "12", HANG_A, HANG_B])
    assert out.kept == [] and _reasons(out) == ["no_majority"] * 4  # a judged 2-2 tie


def test_unjudged_comparisons_that_decide_the_vote_give_no_verdict(tmp_path, grader):
    # if LOST1 == LOST2 the vote is a 2-2 tie, else "12" wins 2/4: the grader must decide
    out = _run(_stage(tmp_path, LosingGrader(grader), 4), ["12", "12", "LOST1", "LOST2"])
    assert out.kept == []
    assert _reasons(out) == ["grader_unjudged"] * 4


def test_unjudged_sample_is_set_aside_when_the_vote_does_not_hang_on_it(tmp_path, grader):
    out = _run(_stage(tmp_path, LosingGrader(grader), 4), ["12", "12", "12.0", "LOST"])
    assert [r["answer"] for r in out.kept] == ["12"] * 3
    assert out.kept[0]["verdicts"]["self_consistency"]["detail"]["votes"] == 3
    assert _reasons(out) == ["grader_unjudged"]  # never "minority_answer"


def test_judged_votes_are_unchanged(tmp_path, grader):
    out = _run(_stage(tmp_path, grader, 4), ["12", "12", "13", "14"])
    assert len(out.kept) == 2
    assert _reasons(out) == ["minority_answer", "minority_answer"]
