"""Against a real Lean + Mathlib: run only where ``lake`` is on PATH and ``VERIMATH_LEAN_PROJECT``
names a built Mathlib project (``verimath doctor`` says how to get one). Skipped otherwise —
on the machine this was written on, these never ran (no Lean toolchain could be installed).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from verimath.prover.types import ProofTask
from verimath.records import VerdictStatus

pytestmark = pytest.mark.lean
HEADER = ("import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\n"
          "open BigOperators Real Nat Topology Rat\n\n")
STMT = "theorem mathd_numbertheory_66 : 194 % 11 = 7 := by\n"


@pytest.fixture(scope="module")
def checker() -> Iterator[object]:
    if not os.environ.get("VERIMATH_LEAN_PROJECT"):
        pytest.skip("set VERIMATH_LEAN_PROJECT to a built Lean project with Mathlib")
    from verimath.prover.checker import LeanChecker
    from verimath.prover.repl import ReplConfig, ReplPool
    from verimath.prover.toolchain import require_lean

    project = require_lean()
    pool = ReplPool(ReplConfig(project_dir=str(project.path), workers=1, timeout_s=300),
                    project.version)
    c = LeanChecker(pool, timeout_s=300)
    yield c
    c.close()


@pytest.mark.parametrize("proof,status,failed", [
    ("  norm_num\n", "correct", None),
    ("  decide\n", "correct", None),
    ("  linarith\n", "wrong", "lean_errors"),
    ("  stop\n  norm_num\n", "wrong", "sorry"),
])
def test_live_audit(checker: object, proof: str, status: str, failed: str | None) -> None:
    v = checker.check(ProofTask(STMT, HEADER, proof))  # type: ignore[attr-defined]
    assert v.status == VerdictStatus(status), v.reason
    if failed:
        assert v.detail["failed"] == failed
    assert v.detail["lean"]["toolchain"]


def test_live_universe_polymorphic_statement_pins(checker: object) -> None:
    stmt = "theorem t_univ {G : Type*} [Group G] (a : G) : a * 1 = a := by\n"
    v = checker.check(ProofTask(stmt, HEADER, "  simp\n"))  # type: ignore[attr-defined]
    assert v.status is VerdictStatus.CORRECT, v.reason


def test_live_native_decide_in_header_is_caught_by_axioms(checker: object) -> None:
    header = HEADER + "theorem helper_66 : 194 % 11 = 7 := by native_decide\n\n"
    v = checker.check(ProofTask(STMT, header, "  exact helper_66\n"))  # type: ignore[attr-defined]
    assert v.status is VerdictStatus.WRONG and v.detail["failed"] == "axioms"


def test_live_compile_filter(checker: object) -> None:
    ok = checker.check_statement(STMT, HEADER)  # type: ignore[attr-defined]
    assert ok.compiles and ok.goal and "194 % 11 = 7" in ok.goal
    bad = checker.check_statement(  # type: ignore[attr-defined]
        "theorem t (x : ℝ) (h : undefined_thing x) : x = 1 := by", HEADER)
    assert bad.status.value == "error"
