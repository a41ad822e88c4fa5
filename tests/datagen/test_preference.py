"""Preference pairs from real datagen records: pairing rules, provenance, funnel counts."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from tests.datagen.helpers import informal_config, pot_policy, write_problems
from verimath.datagen.config import ExportConfig
from verimath.datagen.pipeline import Components, main
from verimath.datagen.preference import PreferenceConfig, build_pairs, load_reference
from verimath.records import Verdict, VerdictStatus
from verimath.testing import ScriptedBackend


def _run(tmp_path: Path, name: str = "out", **pref: object):
    inp = write_problems(tmp_path / "in.jsonl")
    cfg = informal_config(tmp_path / name, inp)
    cfg = dataclasses.replace(cfg, export=ExportConfig(
        formats=("jsonl", "preference"), preference=PreferenceConfig(**pref)))  # type: ignore[arg-type]
    rep = main(cfg, components=Components(backend=ScriptedBackend(pot_policy)))
    return rep, _lines(tmp_path / name / "preference.jsonl")


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pref")
    rep, pairs = _run(tmp, max_per_problem=None)
    out = tmp / "out"
    return rep, pairs, _lines(out / "data.jsonl"), _lines(out / "rejected.jsonl")


def test_pairs_are_verified_vs_judged_wrong_with_provenance(run) -> None:
    rep, pairs, rows, _ = run
    # q0 (2+3): 2 distinct correct programs x {print(6) wrong, raise -> no answer}; q1 (10/4):
    # 1 distinct correct x 3 wrong; q2/q3 have no gold (self-consistency: never chosen); q4: none
    # correct
    assert sorted((p["problem_id"], p["rejected_answer"] or "-") for p in pairs) == sorted(
        [("q0", "6"), ("q0", "-"), ("q0", "6"), ("q0", "-"),
         ("q1", "2"), ("q1", "3"), ("q1", "1")])
    by_id = {r["id"]: r for r in rows}
    for p in pairs:
        chosen = by_id[p["provenance"]["chosen"]["id"]]
        assert chosen["verified_by"] == "gold" and chosen["verdicts"]["grader"]["status"] == \
            "correct"
        assert p["chosen"] == [{"role": "assistant", "content": chosen["messages"][-1]["content"]}]
        assert p["prompt"] == chosen["messages"][:-1]  # system + the question, as sampled
        assert p["chosen_source"] == "own" and p["rejected_reason"] in ("wrong", "no_answer")
        assert "".join(s["text"] for s in p["rejected_spans"]) == p["rejected"][0]["content"]
        assert p["provenance"]["chosen"]["model"] == "scripted-policy"
        if p["rejected_reason"] == "wrong":
            assert p["provenance"]["rejected"]["verdict"]["status"] == "wrong"
    f = rep.funnel.get("preference")
    assert (f.entered, f.left, f.produced) == (5, 2, 7)
    assert f.dropped == {"no_verified_chosen": 3}
    assert rep.counts["pairs"] == 7


def test_could_not_judge_samples_are_never_paired(tmp_path, monkeypatch) -> None:
    import verimath.reasoning.sandbox as sbmod
    from verimath.reasoning.sandbox import ExecResult, ExecStatus

    real_run = sbmod.Sandbox.run

    def dead_worker(self, code, **kw):  # q0's and q1's wrong programs hit a dead worker
        if code.strip() in ("print(6)", "print(3)"):
            return ExecResult(ExecStatus.SANDBOX_ERROR, "", "worker died", None, 0.0, 0.0, "t")
        return real_run(self, code, **kw)

    monkeypatch.setattr(sbmod.Sandbox, "run", dead_worker)
    rep, pairs = _run(tmp_path, max_per_problem=None)
    rejected = _lines(tmp_path / "out" / "rejected.jsonl")
    infra = [e for e in rejected if e["reason"] == "sandbox_error"]
    assert sorted(e["record"]["problem_id"] for e in infra) == ["q0", "q1", "q3"]  # recorded
    texts = {p["rejected"][0]["content"] for p in pairs}
    assert not any(e["record"]["attempt"]["text"] in texts for e in infra)  # ... never paired
    assert sorted(p["rejected_answer"] or "" for p in pairs) == ["", "", "1", "2"]
    assert rep.funnel.get("preference").rejected_out["not_judged_wrong:sandbox_error"] == 3


def test_equivalent_answers_are_never_paired(run) -> None:
    """The stored reason is not trusted alone: the grader compares both answers again."""
    _, _, rows, rejected = run
    edited = []
    for e in rejected:
        rec = e["record"]
        if e["reason"] == "wrong" and rec.get("problem_id") == "q0":
            # "5.0" is the chosen "5" in another spelling (e.g. a verdict from a looser grader)
            rec = {**rec, "attempt": {**rec["attempt"], "text": "print(5.0)", "answer": "5.0"}}
        edited.append({**e, "record": rec})
    from verimath.reasoning.grading import Grader, GraderConfig

    with Grader(GraderConfig(workers=1)) as grader:
        res = build_pairs(["q0", "q1"], rows, edited, grader,
                          PreferenceConfig(max_per_problem=None))
    assert "5.0" not in {p["rejected_answer"] for p in res.pairs}
    assert res.dropped["equivalent_answers"] == 2  # both distinct chosen programs x "5.0"
    assert len(res.pairs) == 5


class _TimeoutOn:
    """Wraps the real grader; one (chosen, rejected) comparison times out (could not judge)."""

    def __init__(self, inner, pair):
        self.inner, self.pair = inner, pair

    def grade_many(self, pairs, extract=True):
        pairs = list(pairs)
        out = self.inner.grade_many(pairs, extract=extract)
        return [Verdict(VerdictStatus.TIMEOUT, "t") if p == self.pair else v
                for p, v in zip(pairs, out, strict=True)]


def test_an_unjudged_equivalence_check_drops_the_pair(run) -> None:
    _, _, rows, rejected = run
    from verimath.reasoning.grading import Grader, GraderConfig

    with Grader(GraderConfig(workers=1)) as real:
        res = build_pairs(["q1"], rows, rejected, _TimeoutOn(real, ("2.5", "3")),
                          PreferenceConfig(max_per_problem=None))
    assert sorted(p["rejected_answer"] for p in res.pairs) == ["1", "2"]
    assert res.dropped["equivalence_unjudged"] == 1
    with Grader(GraderConfig(workers=1)) as real:
        only = build_pairs(["q1"], rows, [e for e in rejected if e["record"].get("attempt", {})
                                          .get("answer") == "3"],
                           _TimeoutOn(real, ("2.5", "3")), PreferenceConfig())
    assert only.pairs == [] and only.no_pairs == {"only_unjudged": 1}


def test_cap_and_hardest_negatives_first(run) -> None:
    _, _, rows, rejected = run
    from verimath.reasoning.grading import Grader, GraderConfig

    with Grader(GraderConfig(workers=1)) as grader:
        res = build_pairs(["q0", "q1"], rows, rejected, grader, PreferenceConfig(max_per_problem=1))
    got = {p["problem_id"]: p for p in res.pairs}
    assert len(res.pairs) == 2
    assert got["q0"]["rejected_reason"] == "wrong"  # a wrong answer before no answer
    assert res.dropped["over_cap"] == 3 + 2


def test_test_double_verdicts_are_never_paired(run) -> None:
    _, _, rows, rejected = run
    doubled = [{**r, "provenance": {**r["provenance"], "checker": {"name": "scripted",
                                                                    "test_double": True}}}
               for r in rows]
    from verimath.reasoning.grading import Grader, GraderConfig

    with Grader(GraderConfig(workers=1)) as grader:
        res = build_pairs(["q0", "q1"], doubled, rejected, grader, PreferenceConfig())
    assert res.pairs == [] and res.no_pairs == {"no_verified_chosen": 2}


def test_reference_chosen_is_marked_and_fills_problems_without_own(tmp_path, run) -> None:
    _, _, rows, rejected = run
    ref_row = {**rows[0], "id": "ref1", "problem_id": "q4", "answer": "42",
               "messages": rows[0]["messages"][:-1] + [
                   {"role": "assistant", "content": "```python\nprint(7 * 6)\n```"}],
               "verdicts": {"grader": {"status": "correct", "reason": "",
                                       "detail": {"gold": "42", "pred": "42"}}},
               "problem": {**rows[0]["problem"], "id": "q4", "answer": "42"}}
    (tmp_path / "ref.jsonl").write_text(json.dumps(ref_row) + "\n")
    from verimath.reasoning.grading import Grader, GraderConfig

    with Grader(GraderConfig(workers=1)) as grader:
        res = build_pairs(["q4"], rows, rejected, grader, PreferenceConfig(max_per_problem=2),
                          reference=load_reference(tmp_path / "ref.jsonl"))
    assert len(res.pairs) == 2
    assert {p["chosen_source"] for p in res.pairs} == {"reference"}
    assert {p["rejected_answer"] for p in res.pairs} <= {"41", "43", "no", "40", "0"}
    (tmp_path / "bad.jsonl").write_text('{"x": 1}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        load_reference(tmp_path / "bad.jsonl")
