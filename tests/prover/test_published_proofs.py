"""The text-level audit on published, kernel-verified proofs (Kimina-Prover Preview, miniF2F-test).

No false rejection: every published proof is accepted by the text audit unless it uses native
evaluation (``native_decide``), which the audit rejects on purpose. A restatement that differs
from our miniF2F copy is noted, never rejected (the kernel pin judges the given statement).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from verimath.datasets import data_root
from verimath.prover.audit import (
    RESTATED_NOTE,
    AuditReport,
    CheckedCommand,
    LeanMessage,
    LeanResponse,
    audit_response,
    audit_text_only,
    prepare,
    screen_text,
)
from verimath.prover.types import LeanVersion, ProofTask
from verimath.records import VerdictStatus

KIMINA = data_root() / "lean_proofs" / "kimina_preview_minif2f_test.jsonl"
MINIF2F = data_root() / "minif2f" / "minif2f.jsonl"


def _rows() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    if not (KIMINA.is_file() and MINIF2F.is_file()):
        pytest.skip(f"published proofs not found under {data_root()}")
    stmts = {r["name"]: r for r in map(json.loads, MINIF2F.read_text("utf-8").splitlines())}
    return [(r, stmts[r["name"]]) for r in map(json.loads, KIMINA.read_text("utf-8").splitlines())]


def test_no_false_rejections_on_kimina_minif2f_test() -> None:
    rows = _rows()
    assert len(rows) == 197
    native = differs = 0
    for proof, stmt in rows:
        task = ProofTask(stmt["formal_statement"], stmt["header"], proof["proof"], proof["name"])
        out = audit_text_only(task)
        uses_native = re.search(r"\bnative_decide\b", proof["proof"]) is not None
        if isinstance(out, AuditReport):
            assert uses_native, (proof["name"], out.findings)
            assert [f.check for f in out.findings] == ["forbidden_construct"]
            assert "native_decide" in out.findings[0].why
            native += 1
        else:
            assert isinstance(out, CheckedCommand) and not uses_native, proof["name"]
            assert out.code.startswith(stmt["formal_statement"].split(":=")[0][:20]) or \
                f"\n{stmt['formal_statement'].split(':=')[0][:20]}" in out.code
            differs += out.restated_differs
    assert native == 11  # the released proofs that use native_decide
    assert differs == 7  # restatements of other miniF2F versions: noted, judged by Lean


@pytest.mark.parametrize(("prelude", "rejected"), [
    ("open Real", False),  # the example: harmless under the kernel pin
    ("open Real Nat\nopen scoped BigOperators", False),
    ("set_option maxHeartbeats 400000 in", False),
    ("open Nat in", False),
    ("lemma aux : True := by decide +native", True),
    ("lemma aux : True := by decide (config := {native := true})", True),
    ("lemma aux (x : BitVec 4) : x = x := by bv_decide", True),
    ("set_option debug.skipKernelTC true in", True),
    ("namespace Foo", True),
])
def test_prelude_rules(prelude: str, rejected: bool) -> None:
    stmt = "theorem t (x : ℕ) : x = x := by"
    cmd, findings = prepare(ProofTask(stmt, "", f"{prelude}\n\n{stmt}\n  rfl\n", "t"))
    assert bool(findings) is rejected, findings
    assert (cmd is None) is rejected


def test_open_in_a_proof_body_still_needs_in() -> None:
    assert screen_text("open Real\n  simp")
    assert not screen_text("open Real in\n  simp")


@pytest.mark.parametrize("axiom", ["Lean.ofReduceBool", "Lean.trustCompiler",
                                   "t._native.native_decide.ax_1_1", "t._native.decide.ax_2",
                                   "sorryAx"])
def test_native_and_sorry_axioms_rejected_at_the_appended_line(axiom: str) -> None:
    stmt = "theorem t (x : ℕ) : x = x := by"
    cmd, _ = prepare(ProofTask(stmt, "", "  rfl", "t"))
    assert cmd is not None
    resp = LeanResponse((LeanMessage(
        "info", f"'verimath_pinned' depends on axioms: [propext, {axiom}]", cmd.axioms_line),))
    report = audit_response(cmd, resp)
    assert [f.check for f in report.findings] == ["axioms"] and axiom in report.findings[0].why
    if axiom != "sorryAx":
        assert "native evaluation" in report.findings[0].why


def test_differing_restatement_is_noted_in_the_verdict() -> None:
    stmt = "theorem t (x : ℕ) : x = x := by"
    task = ProofTask(stmt, "", "theorem t (x : ℕ) : (x) = x := by\n  rfl\n", "t")
    cmd, findings = prepare(task)
    assert cmd is not None and not findings and cmd.restated_differs
    assert cmd.code.startswith(f"{stmt}\n  rfl")  # the given statement, not the copy
    resp = LeanResponse((LeanMessage("info", "'verimath_pinned' depends on axioms: [propext]",
                                     cmd.axioms_line),))
    v = audit_response(cmd, resp).to_verdict(task, LeanVersion("x", "y"))
    assert v.detail["restatement"] == RESTATED_NOTE and str(v.status) == "correct"


@pytest.mark.parametrize(("imports", "judged_wrong"), [
    ("import Mathlib\nimport Aesop", False),      # covered by the header: dropped, Lean judges
    ("import Mathlib\nimport MadeUp.Tactic", True),  # the checking environment lacks it
])
def test_full_file_importing_what_the_header_lacks_is_wrong_not_unjudged(
        imports: str, judged_wrong: bool) -> None:
    """A made-up import must not turn a wrong sample into "could not judge" (out of pass@k)."""
    stmt = "theorem t (x : ℕ) : x + 0 = x := by"
    out = audit_text_only(ProofTask(stmt, "import Mathlib", f"{imports}\n\n{stmt}\n  simp\n", "t"))
    if judged_wrong:
        assert isinstance(out, AuditReport) and out.infra is None
        assert [f.check for f in out.findings] == ["forbidden_construct"]
        assert "MadeUp.Tactic" in out.findings[0].why
        v = out.to_verdict(ProofTask(stmt, "import Mathlib", "", "t"), LeanVersion(None, None))
        assert v.status is VerdictStatus.WRONG
    else:
        assert isinstance(out, CheckedCommand)
