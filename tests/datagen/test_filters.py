"""Dedup (normalized-text hash) and decontamination (word n-gram overlap) with planted overlaps."""

from __future__ import annotations

import pytest

from verimath.datagen.decontam import NgramIndex, words
from verimath.datagen.dedup import first_occurrences, normalize_text, text_hash
from verimath.datagen.funnel import Funnel
from verimath.datagen.runner import StageRunner
from verimath.datagen.stages import DecontamStage, DedupStage, as_items, split_spec
from verimath.records import Problem

BENCH = (
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes "
    "muffins for her friends every day with four. She sells the remainder at the farmers' "
    "market daily for $2 per fresh duck egg. How much in dollars does she make every day?"
)


def P(pid: str, text: str, formal: str | None = None) -> Problem:
    return Problem(id=pid, source="test", informal=text, formal_statement=formal)


@pytest.mark.parametrize("a,b,same", [
    ("What is 2+2?", "  what is 2 + 2 ?\n", True),
    ("What is 2+2?", "WHAT   IS 2+2?", True),
    ("What is 2+2?", "What is 2+3?", False),
    ("Ｆｕｌｌ width", "full width", True),  # NFKC
    ("a b", "ab", False),
])
def test_normalize_text(a: str, b: str, same: bool) -> None:
    assert (normalize_text(a) == normalize_text(b)) is same
    assert (text_hash(a) == text_hash(b)) is same


def test_first_occurrence_keeps_the_first_in_input_order() -> None:
    got = first_occurrences([("k1", "Q one"), ("k2", "q  ONE"), ("k3", "other"), ("k4", "Q one")])
    assert got == {"k1": None, "k2": "k1", "k3": None, "k4": "k1"}


def _index(n: int = 13, min_overlap: int = 1) -> NgramIndex:
    idx = NgramIndex(n=n, min_overlap=min_overlap)
    idx.add_problems([P("gsm8k-test-0", BENCH), P("short-1", "Compute 7 times 8.")], "bench")
    return idx


def test_planted_13gram_is_flagged_and_12gram_is_not() -> None:
    w = words(BENCH)
    planted13 = "A farmer wonders about this. " + " ".join(w[10:23]) + " What then?"
    planted12 = "A farmer wonders about this. " + " ".join(w[10:22]) + " What then?"
    idx = _index()
    hit = idx.check(planted13)
    assert hit is not None and hit.problem_id == "gsm8k-test-0" and hit.benchmark == "bench"
    assert idx.check(planted12) is None
    assert "13-gram overlap with bench" in hit.reason(13)


def test_overlap_survives_case_punctuation_and_latex_changes() -> None:
    disguised = BENCH.upper().replace("'", " ").replace("$", "\\$").replace(",", " ,")
    assert _index().check(disguised) is not None


def test_min_overlap_and_configurable_n() -> None:
    w = words(BENCH)
    one_gram_13 = "intro " + " ".join(w[0:13]) + " outro"
    assert _index(min_overlap=1).check(one_gram_13) is not None
    assert _index(min_overlap=5).check(one_gram_13) is None
    eight = "x y " + " ".join(w[30:38]) + " z"
    assert _index(n=13).check(eight) is None
    assert _index(n=8).check(eight) is not None


def test_short_texts_compare_whole() -> None:
    idx = _index()
    assert idx.check("compute 7 TIMES 8") is not None  # equal short text
    assert idx.check("7 times 8") is not None  # inside a short benchmark text
    assert idx.check("Compute 9 times 8.") is None
    assert idx.check("") is None


def test_formal_statement_is_checked_too() -> None:
    stmt = ("theorem mathd_algebra_10 (x : ℝ) (h₀ : 3 * x + 5 = 20) (h₁ : x ≠ 0) "
            ": x = 5 ∧ x ^ 2 = 25 ∧ x + 1 = 6 := by")
    idx = NgramIndex()
    idx.add_problems([P("mathd_algebra_10", "", stmt)], "minif2f")
    assert idx.check_problem(P("new", "Some different text entirely here.", stmt)) is not None
    assert idx.check_problem(P("new", "Some different text entirely here.")) is None


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="n-gram"):
        NgramIndex(n=0)
    with pytest.raises(ValueError, match="min_overlap"):
        NgramIndex(min_overlap=0)


def test_split_spec() -> None:
    assert split_spec("minif2f:test") == ("minif2f", "test")
    assert split_spec("gsm8k") == ("gsm8k", None)
    assert split_spec("data/x.jsonl") == ("data/x.jsonl", None)


def test_dedup_and_decontam_stages_count_and_explain(tmp_path) -> None:
    w = words(BENCH)
    problems = [
        P("a", "How many apples are left if Tom has 10 and eats 3?"),
        P("b", "how many apples are left if tom has 10 and eats 3 ?"),  # duplicate of a
        P("c", "Riddle: " + " ".join(w[5:25]) + "?"),  # contaminated
        P("d", "What is the sum of the first 10 positive integers?"),
        P("a", "How many apples are left if Tom has 10 and eats 3?"),  # exact repeat of a
    ]
    funnel = Funnel()
    runner = StageRunner(tmp_path, funnel)
    items = as_items(problems)
    assert len({it["key"] for it in items}) == 5
    kept = runner.run(DedupStage(), items)
    assert [it["problem"]["id"] for it in kept.kept] == ["a", "c", "d"]
    assert {r["reason"] for r in kept.rejected} == {"duplicate: same normalized text as a"}
    res = runner.run(DecontamStage(("bench",), index=_index()), kept.kept)
    assert [it["problem"]["id"] for it in res.kept] == ["a", "d"]
    assert res.rejected[0]["reason"].startswith("contaminated: 13-gram overlap with bench")
    rows = {s.stage: s for s in funnel.stages}
    assert (rows["dedup"].entered, rows["dedup"].left, rows["dedup"].dropped) == (
        5, 3, {"duplicate": 2})
    assert (rows["decontaminate"].entered, rows["decontaminate"].left) == (3, 2)
    assert rows["decontaminate"].dropped == {"contaminated": 1}


def test_gsm8k_test_question_planted_in_train_style_problem_is_caught(shared_data) -> None:
    from verimath.datagen.decontam import build_index
    from verimath.datasets import load_problems

    idx = build_index(["gsm8k"])
    test_q = load_problems("gsm8k", limit=5).problems[3].informal
    planted = "Here is a new word problem for practice. " + test_q
    assert idx.check(planted) is not None
    train = load_problems("gsm8k_train", limit=50).problems
    flagged = sum(idx.check(p.informal) is not None for p in train)
    assert flagged <= 2  # the train split is (almost) disjoint from test at 13-grams
