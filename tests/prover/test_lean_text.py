"""Statement parsing, normalization and negation (on every miniF2F and ProofNet statement)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from verimath.prover.lean_text import (
    StatementError,
    drop_proof_marker,
    mask_comments_and_strings,
    negate_statement,
    normalize_statement,
    parse_statement,
    split_binders,
)


def test_every_minif2f_statement_parses_and_negates(minif2f_rows: list[dict[str, Any]]) -> None:
    assert len(minif2f_rows) == 488
    for r in minif2f_rows:
        st = parse_statement(r["formal_statement"])
        assert st.name == r["name"] and st.is_theorem
        neg = negate_statement(r["formal_statement"])
        assert neg.startswith(f"theorem {r['name']}_neg :\n  ¬ (") and neg.endswith(":= by\n")
        # the negation is itself a statement whose binders are all under the negation
        again = parse_statement(neg)
        assert again.binders == "" and again.conclusion.startswith("¬ (")
        # every hypothesis of the original appears inside the negated proposition
        for group in split_binders(st.binders):
            assert group in neg


def test_every_proofnet_statement_parses(shared_data: Path) -> None:
    rows = [json.loads(x) for x in (shared_data / "proofnet" / "proofnet.jsonl").open()]
    assert len(rows) == 371
    kinds = {parse_statement(r["formal_statement"]).keyword for r in rows}
    assert kinds == {"theorem", "def"}
    for r in rows:
        st = parse_statement(r["formal_statement"])
        assert st.name == r["name"]
        if st.is_theorem:
            negate_statement(r["formal_statement"])
        else:
            with pytest.raises(StatementError, match="cannot negate"):
                negate_statement(r["formal_statement"])


@pytest.mark.parametrize("statement,expected", [
    ("theorem t (x y : ℤ) (h₀ : 0 < y) : x = 26 := by\n",
     "theorem t_neg :\n  ¬ (∀ (x y : ℤ) (h₀ : 0 < y), x = 26) := by\n"),
    ("theorem t : 91 ^ 2 = 8281 := by", "theorem t_neg :\n  ¬ (91 ^ 2 = 8281) := by\n"),
    ("theorem t {α : Type*} [Fintype α] (f : α → ℕ) : ∀ a, f a = f a :=",
     "theorem t_neg :\n  ¬ (∀ {α : Type*} [Fintype α] (f : α → ℕ), ∀ a, f a = f a) := by\n"),
    ("theorem t (a : ℤ)\n  (f := λ n : ℕ => a + n) : f 0 = a :=",
     "theorem t_neg :\n  ¬ (∀ (a : ℤ) (f : optParam (_) (λ n : ℕ => a + n)), f 0 = a) := by\n"),
    ("theorem t (x : ℝ) -- a comment : with a colon\n  (h : x = 1) : x ≠ 2 := by",
     "theorem t_neg :\n  ¬ (∀ (x : ℝ) (h : x = 1), x ≠ 2) := by\n"),
])
def test_negation_moves_binders_under_not(statement: str, expected: str) -> None:
    assert negate_statement(statement) == expected


@pytest.mark.parametrize("bad,match", [
    ("axiom a : False", "expected one of"),
    ("theorem : True", "no declaration name"),
    ("theorem t (x : ℕ := True", "unclosed"),
    ("theorem t (x : ℕ)) : True", "unbalanced"),
    ("theorem t (x : ℕ)", "no top-level ':'"),
    ("theorem t : True := trivial\ntheorem u : False :=", "unexpected ':='"),
])
def test_bad_statements_raise_with_reason(bad: str, match: str) -> None:
    with pytest.raises(StatementError, match=match):
        parse_statement(bad)


@pytest.mark.parametrize("a,b,same", [
    ("theorem t (x y : ℤ) (h : 0 < y) : x = 26 := by\n",
     "theorem t (x y: ℤ)\n    (h : 0 < y) :\n  x = 26 := by sorry", True),
    ("theorem t (x : ℤ) : x = 26", "theorem t (x : ℤ) : x = 26 -- note\n", True),
    ("theorem t (x : ℤ) : x = 26", "theorem t (x : ℤ) : x = 27", False),
    ("theorem t (x : ℤ) : x = 26", "theorem t (x : ℕ) : x = 26", False),
    ("theorem t (x : ℤ) : x = 26", "theorem t (x : ℤ) (h : x = 26) : x = 26", False),
    ("theorem t (a b : ℕ) : a = b", "theorem t (ab : ℕ) : a = b", False),
    ("theorem t (a b : ℕ) : a = b", "lemma t (a b : ℕ) : a = b", True),
    ("theorem t (a b : ℕ) : a = b", "theorem u (a b : ℕ) : a = b", False),
])
def test_normalize_statement(a: str, b: str, same: bool) -> None:
    assert (normalize_statement(a) == normalize_statement(b)) is same


def test_masking_keeps_positions_and_handles_nesting() -> None:
    code = 'a /- x /- y -/ z -/ b -- c\n"s -- t" d'
    masked = mask_comments_and_strings(code)
    assert len(masked) == len(code) and masked.count("\n") == 1
    assert masked.split() == ["a", "b", "d"]
    assert "s -- t" in mask_comments_and_strings(code, keep_strings=True)


def test_drop_proof_marker() -> None:
    assert drop_proof_marker("theorem t : True := by\n") == "theorem t : True"
    assert drop_proof_marker("theorem t : True := by sorry") == "theorem t : True"
    assert drop_proof_marker("theorem t : True :=") == "theorem t : True"
