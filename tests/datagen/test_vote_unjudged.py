"""Self-consistency with a grader that cannot judge: unjudged comparisons never decide a vote.

A real grader whose workers hang on ``9^{9^{9^9}}`` (a C big-integer power) and are killed
after ``timeout_s``: those comparisons are TIMEOUT, neither "equal" nor "not equal".
"""

from __future__ import annotations

import pytest

from tests.datagen.helpers import informal_config
from verimath.datagen.pipeline import Components
from verimath.datagen.solve import SolveStage
from verimath.reasoning.grading import Grader, GraderConfig
from verimath.records import Attempt, Problem

HANG_A = r"9^{9^{9^9}}"
HANG_B = r"9^{9^{9^{9}}}"  # another spelling: not grouped by text, so the grader is asked


@pytest.fixture(scope="module")
def grader():
    with Grader(GraderConfig(timeout_s=1.0, workers=2)) as g:
        yield g


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


def test_unjudged_comparisons_that_decide_the_vote_give_no_verdict(tmp_path, grader):
    # if HANG_A == HANG_B the vote is a 2-2 tie, else "12" wins 2/4: the grader must decide
    out = _run(_stage(tmp_path, grader, 4), ["12", "12", HANG_A, HANG_B])
    assert out.kept == []
    assert _reasons(out) == ["grader_unjudged"] * 4


def test_unjudged_sample_is_set_aside_when_the_vote_does_not_hang_on_it(tmp_path, grader):
    out = _run(_stage(tmp_path, grader, 4), ["12", "12", "12.0", HANG_A])
    assert [r["answer"] for r in out.kept] == ["12"] * 3
    assert out.kept[0]["verdicts"]["self_consistency"]["detail"]["votes"] == 3
    assert _reasons(out) == ["grader_unjudged"]  # never "minority_answer"


def test_judged_votes_are_unchanged(tmp_path, grader):
    out = _run(_stage(tmp_path, grader, 4), ["12", "12", "13", "14"])
    assert len(out.kept) == 2
    assert _reasons(out) == ["minority_answer", "minority_answer"]
