"""Structured answers end to end: whole solutions through the grader and ``verimath grade``.

The rows of ``data/structured_cases.jsonl`` (sets, tuples, intervals, matrices, relations,
several boxes, multiple choice, mixed numbers, separators, units; the cases of issue 9 and
answer formats of GSM8K / MATH-500) carry the intended verdict; every bug becomes a row.
"""

import io
import json
from pathlib import Path

import pytest

from verimath.reasoning._grade_worker import KNOWN_FALSE_POSITIVES, _Judge
from verimath.reasoning.grading import Grader, GraderConfig, GraderUnavailable
from verimath.records import VerdictStatus

CASES_PATH = Path(__file__).parent / "data" / "structured_cases.jsonl"
CASES = [json.loads(line) for line in CASES_PATH.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def grader():
    with Grader(GraderConfig(timeout_s=10.0, workers=2)) as g:
        yield g


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_structured_case(grader, case):
    v = grader.grade(case["gold"], case["pred"])
    assert str(v.status) == case["expected"], (v.reason, v.detail)


def test_every_category_has_correct_and_wrong_rows():
    cats: dict[str, set[str]] = {}
    for c in CASES:
        cats.setdefault(c["category"], set()).add(c["expected"])
    for cat in ("relation", "matrix", "multiple_boxes", "tuple", "interval", "equation",
                "multiple_choice", "false_positive"):
        assert cat in cats, cat
    assert all({"correct", "wrong"} <= cats[c] for c in
               ("relation", "matrix", "multiple_boxes", "tuple", "interval", "multiple_choice"))


def test_grade_cli_on_whole_solutions_agrees_and_writes_manifest(tmp_path):
    from verimath.commands.grade_cmd import grade_file, write_manifest

    out, err = io.StringIO(), io.StringIO()
    cfg = GraderConfig(workers=2, timeout_s=10.0)
    report = grade_file(str(CASES_PATH), "gold", "pred", cfg, progress=False, out=out, err=err)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(rows) == len(CASES)
    agree = sum(r["verdict"]["status"] == c["expected"] for r, c in zip(rows, CASES, strict=True))
    assert agree / len(CASES) >= 0.95, agree

    class Args:
        file, gold_field, pred_field, extract = str(CASES_PATH), "gold", "pred", True

    write_manifest(str(tmp_path / "m.json"), cfg, report, Args())  # type: ignore[arg-type]
    man = json.loads((tmp_path / "m.json").read_text())
    grader_cfg = man["config"]["grader"]
    for key in ("float_rounding", "numeric_precision", "strict", "allow_set_relation_comp"):
        assert key in grader_cfg
    assert man["summary"]["records"] == len(CASES)


@pytest.mark.parametrize(
    "kwargs,gold,pred,expected",
    [
        ({}, r"(\frac{3}{5},\frac{8}{3}]", "(0.6,2.6667]", "wrong"),
        ({"float_rounding": 2}, r"(\frac{3}{5},\frac{8}{3}]", "(0.6,2.6667]", "correct"),
        ({}, "(1, 2)", "1 < x < 2", "wrong"),
        ({"allow_set_relation_comp": True}, "(1, 2)", "1 < x < 2", "correct"),
        ({}, "x+y", "a+b", "wrong"),
        ({"strict": False}, "x+y", "a+b", "correct"),
    ],
)
def test_grader_options_reach_math_verify(kwargs, gold, pred, expected):
    with Grader(GraderConfig(workers=1, **kwargs)) as g:
        assert str(g.grade(gold, pred, extract=False).status) == expected


def test_grade_command_flags_build_the_config(tmp_path, capsys):
    from verimath.cli import main as cli

    f = tmp_path / "g.jsonl"
    f.write_text(json.dumps({"answer": r"(\frac{3}{5},\frac{8}{3}]", "pred": "(0.6,2.6667]"})
                 + "\n")
    man = tmp_path / "man.json"
    rc = cli(["grade", "--file", str(f), "--float-rounding", "2", "--no-strict",
              "--set-relation", "--no-progress", "--manifest", str(man), "--workers", "1"])
    assert rc == 0
    line = json.loads(capsys.readouterr().out.splitlines()[0])
    assert line["verdict"]["status"] == "correct"
    cfg = json.loads(man.read_text())["config"]["grader"]
    assert cfg["float_rounding"] == 2 and cfg["strict"] is False
    assert cfg["allow_set_relation_comp"] is True


# -- the worker's decision rule, in process -------------------------------------------------


@pytest.fixture(scope="module")
def judge():
    return _Judge({})


def test_known_false_positives_are_wrong_with_the_installed_math_verify(judge):
    assert judge.self_check() is None
    for gold, pred in KNOWN_FALSE_POSITIVES:
        assert judge.judge(gold, pred)["status"] == "wrong"


def test_self_check_refuses_a_math_verify_with_the_false_positive(monkeypatch):
    j = _Judge({})
    monkeypatch.setattr(j, "verify_fn", lambda *a, **k: True)  # a broken math-verify
    assert "known false positive" in (j.self_check() or "")


def test_every_comparison_raising_is_error_not_wrong(monkeypatch):
    j = _Judge({})

    def boom(*a, **k):
        raise TypeError("cannot compare")

    monkeypatch.setattr(j, "verify_fn", boom)
    res = j.judge("1", "2")
    assert res["status"] == "error" and "every comparison raised" in res["reason"]


def test_real_all_raising_comparison_with_a_bad_gold_is_bad_gold(grader):
    # math-verify reads "12:00" as 12/0 (complex infinity); comparing two of them raises, and
    # it reproduces; the gold does not even verify against itself: BAD_GOLD (never WRONG, which
    # math-verify alone would say)
    v = grader.grade("12:00", "1:00", extract=False)
    assert v.status is VerdictStatus.BAD_GOLD, v
    assert v.detail["first_try"]["reason"].startswith("math-verify: every comparison")
    assert grader.grade("12:00", "12:00", extract=False).status is VerdictStatus.CORRECT


def test_some_comparisons_raising_still_judges(monkeypatch):
    j = _Judge({})
    real = j.verify_fn
    calls = {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:  # a raw-candidate comparison raises; ours was judged
            raise TypeError("cannot compare")
        return real(*a, **k)

    monkeypatch.setattr(j, "verify_fn", flaky)
    res = j.judge("5", "6", pred_raw="so the answer is $6$ here, not 5 as before")
    assert res["status"] == "wrong" and "some comparisons raised" in res["reason"]


def test_raw_math_verify_candidates_come_first(judge):
    # math-verify's own extraction on the raw text finds the relation; ours alone would not
    res = judge.judge("x \\geq 5", "5", pred_raw="Therefore $x \\geq 5$ is the solution.")
    assert res["status"] == "correct"
    assert judge.judge("x \\geq 5", "5")["status"] == "wrong"


def test_grader_refuses_to_start_when_the_worker_fails_its_self_check(tmp_path, monkeypatch):
    # a real worker process whose math-verify is broken by a sitecustomize on its path
    (tmp_path / "sitecustomize.py").write_text(
        "import math_verify, math_verify.grader\n"
        "math_verify.verify = lambda *a, **k: True\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    with pytest.raises(GraderUnavailable, match="known false positive"):
        with Grader(GraderConfig(workers=1, start_timeout_s=60)) as g:
            g.grade("1", "2", extract=False)


def test_status_values_are_verdict_statuses():
    assert {c["expected"] for c in CASES} <= {s.value for s in VerdictStatus}
