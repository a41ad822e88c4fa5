"""The proof audit on recorded Lean REPL responses, through the real checker, pool and models.

Every case in fixtures/repl_audit.json (valid proofs and the adversarial ones: sorry,
native_decide, new axioms, changed statements, skipKernelTC, macros, #exit, namespace tricks,
timeouts, crashes) goes through ``LeanChecker`` -> ``ReplPool`` -> ``RecordedServer`` ->
``lean_interact``'s ``CommandResponse`` model -> the audit.
"""

from __future__ import annotations

from typing import Any

import pytest
from lean_interact import Command

from tests.prover.conftest import AUDIT_CASES, MINIF2F_HEADER, case_responder
from verimath.prover.audit import ALLOWED_AXIOMS, parse_axioms, prepare, screen_text
from verimath.prover.cache import VerdictCache, cache_key
from verimath.prover.lean_text import drop_proof_marker, parse_statement
from verimath.prover.scripted import RecordedServer, ScriptedChecker, recorded_checker
from verimath.prover.types import CompileStatus, LeanVersion, ProofChecker, ProofTask
from verimath.records import VerdictStatus

LEAN = LeanVersion("leanprover/lean4:v4.9.0", "abc123")
S10 = AUDIT_CASES[0]["formal_statement"]


def _task(case: dict[str, Any]) -> ProofTask:
    return ProofTask(case["formal_statement"], case["header"], case["proof"], "p")


@pytest.mark.parametrize("case", AUDIT_CASES, ids=[c["id"] for c in AUDIT_CASES])
def test_recorded_case(case: dict[str, Any]) -> None:
    checker = recorded_checker(case_responder(case), lean=LEAN, crash_retries=1)
    v = checker.check(_task(case))
    exp = case["expected"]
    assert v.status == VerdictStatus(exp["status"]), v.reason
    if "failed" in exp:
        assert v.detail["failed"] == exp["failed"], v.reason
        assert exp["failed"] in v.reason
    else:
        assert "failed" not in v.detail
    # provenance: toolchain and Mathlib revision recorded with every verdict
    assert v.detail["lean"] == {"toolchain": LEAN.toolchain, "mathlib_rev": LEAN.mathlib_rev}
    if "rejected_before_lean" in case:  # nothing was sent to Lean
        assert checker.runner.stats.started == 0
    if v.status is VerdictStatus.CORRECT:
        assert set(v.detail["axioms"]) <= ALLOWED_AXIOMS
        assert all(s == "pass" for s in v.detail["checks"].values())
        assert len(v.detail["checks"]) == 5


def test_every_adversarial_kind_is_covered() -> None:
    ids = {c["id"] for c in AUDIT_CASES}
    for needed in ("sorry_text", "sorry_via_stop", "native_decide_text", "native_decide_in_header",
                   "new_axiom", "user_axiom_in_header", "weakened_statement", "skip_kernel",
                   "timeout", "crash", "redefined_name", "macro_tactic", "exit_command"):
        assert needed in ids
    wrong = [c for c in AUDIT_CASES if c["expected"]["status"] != "correct"]
    assert len(wrong) >= 30


def test_infrastructure_failures_are_never_wrong() -> None:
    for c in AUDIT_CASES:
        if c["id"] == "timeout":  # the proof ran Lean out of time: the proof's failure
            assert c["expected"]["status"] == "unverifiable"
        elif "raises" in c or c["id"] in ("repl_error", "missing_axiom_report"):
            assert c["expected"]["status"] == "error"


def test_recorded_command_places_statement_verbatim_and_pins_it() -> None:
    """The checked file uses the given statement, whatever the submission restated, and ends
    with the kernel pin against the reference elaborated before any submitted text."""
    for c in AUDIT_CASES:
        if "command" in c:
            pinned = drop_proof_marker(c["formal_statement"])
            name = parse_statement(c["formal_statement"]).name
            assert f"{pinned} := " in c["command"]
            assert c["command"].endswith(
                f"\n\ntheorem verimath_pinned : type_of% @verimath_ref_stmt := @{name}\n\n"
                "#print axioms verimath_pinned\n")
            assert c["setup"] == pinned.replace(f"theorem {name}", "theorem verimath_ref_stmt") \
                + " := sorry\n"


def test_crash_is_retried_on_a_fresh_process() -> None:
    good = next(c for c in AUDIT_CASES if c["id"] == "valid_continuation")
    calls = {"n": 0}

    def respond(req: Any) -> Any:
        if req.env is None:
            return {"env": 0}
        calls["n"] += 1
        return ConnectionAbortedError("died") if calls["n"] == 1 else good["response"]

    checker = recorded_checker(respond, lean=LEAN, crash_retries=1)
    v = checker.check(_task(good))
    assert v.status is VerdictStatus.CORRECT
    assert checker.runner.stats.retired_crash == 1 and checker.runner.stats.started == 2
    calls["n"] = 0  # without retries the first crash is the verdict: ERROR, never WRONG
    v0 = recorded_checker(respond, lean=LEAN, crash_retries=0).check(_task(good))
    assert v0.status is VerdictStatus.ERROR and "crash" in v0.reason


def test_header_that_does_not_elaborate_is_an_error_not_wrong() -> None:
    def respond(req: Any) -> Any:
        if req.env is None:
            return {"messages": [{"severity": "error", "pos": {"line": 1, "column": 0},
                                  "data": "unknown package 'Mathlib'"}], "env": 0}
        raise AssertionError("the proof must not run after a failed header")

    v = recorded_checker(respond, lean=LEAN).check(
        ProofTask(S10, MINIF2F_HEADER, "  nlinarith [h₂]\n"))
    assert v.status is VerdictStatus.ERROR and "header" in v.reason


def test_statement_that_does_not_elaborate_is_an_error_not_wrong() -> None:
    def respond(req: Any) -> Any:
        if req.env is None:
            return {"env": 0}
        if req.cmd.startswith("theorem verimath_ref_stmt"):
            return {"messages": [{"severity": "error", "pos": {"line": 1, "column": 40},
                                  "data": "unknown identifier 'foo'"}], "env": 1}
        raise AssertionError("the proof must not run when the statement fails")

    v = recorded_checker(respond, lean=LEAN).check(
        ProofTask("theorem t (x : ℝ) (h : foo x) : x = 1 := by", MINIF2F_HEADER, "  simp\n"))
    assert v.status is VerdictStatus.ERROR and "statement does not elaborate" in v.reason


def test_unparsable_statement_is_an_error() -> None:
    v = recorded_checker(lambda r: {"env": 0}, lean=LEAN).check(
        ProofTask("axiom foo : False", "", "by simp"))
    assert v.status is VerdictStatus.ERROR and "bad statement" in v.reason


@pytest.mark.parametrize("text,ok", [
    ("  nlinarith [sq_nonneg (x - y), h₀]", True),
    ("  open Real in\n  nlinarith [pi_pos]", True),
    ("  set_option maxHeartbeats 400000 in\n  nlinarith", True),
    ("  have := Classical.em (x = 1)\n  simp_all", True),
    ("  decide", True),
    ("  simp [Finset.card] at *\n  exact #[1, 2].size_pos", True),
    ("  rw [show (2:ℝ) = 1 + 1 by norm_num]", True),
    ("  exact h.isOpen", True),
    ("  -- sorry, a comment mentioning sorry and native_decide\n  linarith", True),
    ("  sorry", False),
    ("  exact sorryAx _ false", False),
    ("  native_decide", False),
    ("  decide\n  exact Lean.ofReduceBool _ _ rfl", False),
    ("  set_option debug.skipKernelTC true in\n  rfl", False),
    ("  set_option compiler.extract_closed false in\n  rfl", False),
    ("  open Nat\n  simp", False),
    ("  simp\n#exit", False),
    ("  simp\n#eval 1", False),
    ("  simp\nend", False),
    ("  exact (unsafeCast ())", False),
    ("  run_tac Lean.Elab.Tactic.evalTactic default", False),
    ("  exact Lean.Meta.mkSorry", False),
    ("  exact «sorry»", False),
    ('  exact "a"', False),
])
def test_screen_text(text: str, ok: bool) -> None:
    assert (screen_text(text) == []) is ok, screen_text(text)


@pytest.mark.parametrize("text,expected", [
    ("'t' depends on axioms: [propext, Classical.choice, Quot.sound]",
     ("t", ("propext", "Classical.choice", "Quot.sound"))),
    ("'A.b' depends on axioms: [propext,\n Classical.choice,\n Quot.sound]",
     ("A.b", ("propext", "Classical.choice", "Quot.sound"))),
    ("'t' does not depend on any axioms", ("t", ())),
    ("'«weird name»' depends on axioms: [sorryAx]", ("weird name", ("sorryAx",))),
    ("unsolved goals", None),
])
def test_parse_axioms(text: str, expected: Any) -> None:
    assert parse_axioms(text) == expected


def test_header_lines_are_dropped_only_before_the_proof() -> None:
    snippet = ("import Mathlib\nopen BigOperators Real Nat Topology Rat\n\n" + S10
               + "  nlinarith [h₂]\nopen BigOperators Real Nat Topology Rat\n")
    cmd, findings = prepare(ProofTask(S10, MINIF2F_HEADER, snippet))
    assert cmd is None and findings[0].check == "forbidden_construct"
    cmd, findings = prepare(ProofTask(S10, MINIF2F_HEADER, snippet.rsplit("open", 1)[0]))
    assert findings == [] and cmd is not None and "import" not in cmd.code


def test_prepare_continuation_and_term_bodies() -> None:
    cmd, f = prepare(ProofTask(S10, "", "  nlinarith [h₂]\n```\nexplanation"))
    assert f == [] and cmd is not None
    assert cmd.body == "by\n  nlinarith [h₂]"
    term = "theorem t (n : ℕ) : n = n :="
    cmd2, _ = prepare(ProofTask(term, "", "rfl"))
    assert cmd2 is not None and cmd2.code.startswith("theorem t (n : ℕ) : n = n := rfl\n")


def test_check_statement_compile_filter() -> None:
    ok = {"sorries": [{"proofState": 0, "pos": {"line": 2, "column": 2},
                       "endPos": {"line": 2, "column": 7}, "goal": "x y : ℤ\n⊢ x = 26"}],
          "messages": [{"severity": "warning", "pos": {"line": 1, "column": 8},
                        "data": "declaration uses `sorry`"}], "env": 1}
    err = {"messages": [{"severity": "error", "pos": {"line": 1, "column": 26},
                         "data": "unknown identifier 'foo'"}], "env": 1}
    sent: list[str] = []

    def respond(req: Any) -> Any:
        if req.env is None:
            return {"env": 0}
        sent.append(req.cmd)
        return err if "foo" in req.cmd else ok

    c = recorded_checker(respond, lean=LEAN)
    good = c.check_statement(S10, MINIF2F_HEADER)
    assert good.status is CompileStatus.OK and good.compiles and good.goal == "x y : ℤ\n⊢ x = 26"
    assert sent[-1].endswith(":= by\n  sorry\n") and good.lean == LEAN
    bad = c.check_statement("theorem bad (x : ℝ) (h : foo x) : x = 1 := by", MINIF2F_HEADER)
    assert bad.status is CompileStatus.ERROR and "unknown identifier" in bad.errors[0]
    n = len(sent)
    for junk in ("axiom cheat : False", "theorem t : True := by\n  native_decide",
                 "theorem t : True := trivial\ntheorem u : False :=",
                 "theorem t (h : sorry) : True :="):
        r = c.check_statement(junk, MINIF2F_HEADER)
        assert r.status is CompileStatus.REJECTED, junk
    assert len(sent) == n  # rejected statements never reach Lean
    to = recorded_checker(lambda req: {"env": 0} if req.env is None else TimeoutError("t"),
                          lean=LEAN)
    assert to.check_statement(S10, MINIF2F_HEADER).status is CompileStatus.TIMEOUT


def test_verdict_cache(tmp_path: Any) -> None:
    good = next(c for c in AUDIT_CASES if c["id"] == "valid_continuation")
    timeout = next(c for c in AUDIT_CASES if c["id"] == "timeout")
    cache = VerdictCache(tmp_path / "v.jsonl")
    checker = recorded_checker(case_responder(good), lean=LEAN, cache=cache)
    first = checker.check(_task(good))
    servers = checker.runner.stats.started
    again = checker.check(_task(good))
    assert again.status is first.status and again.detail["cached"] is True
    assert checker.runner.stats.started == servers and len(cache) == 1
    # a different toolchain or Mathlib revision is a different key
    t = _task(good)
    assert cache_key(t, LEAN) != cache_key(t, LeanVersion("leanprover/lean4:v4.10.0", "abc123"))
    assert cache_key(t, LEAN) != cache_key(t, LeanVersion(LEAN.toolchain, "def456"))
    # infrastructure failures are not cached; the cache survives a reopen
    recorded_checker(case_responder(timeout), lean=LEAN, cache=cache).check(_task(timeout))
    assert len(cache) == 1
    cache.close()
    reopened = VerdictCache(tmp_path / "v.jsonl")
    hit = reopened.get(_task(good), LEAN)
    assert hit is not None and hit.correct


def test_scripted_checker_is_a_proof_checker_and_audits_text() -> None:
    sc = ScriptedChecker({"amc12a_2015_p10": ["by\n  nlinarith [h₂]"]})
    assert isinstance(sc, ProofChecker)
    assert sc.check(ProofTask(S10, "", "  nlinarith [h₂]\n")).correct
    assert sc.check(ProofTask(S10, "", "by\n  nlinarith [h₂]")).correct
    assert sc.check(ProofTask(S10, "", "  linarith\n")).status is VerdictStatus.WRONG
    assert sc.check(ProofTask(S10, "", "  native_decide\n")).detail["failed"] \
        == "forbidden_construct"
    assert sc.check_statement(S10).compiles
    assert sc.check_statement("axiom a : False").status is CompileStatus.REJECTED


def test_recorded_server_validates_with_lean_interact_models() -> None:
    from lean_interact.interface import CommandResponse, LeanError

    srv = RecordedServer(lambda r: {"messages": [{"severity": "info",
                                                  "pos": {"line": 1, "column": 0},
                                                  "data": "x"}], "env": 3})
    resp = srv.run(Command(cmd="#eval 1", env=0))
    assert isinstance(resp, CommandResponse) and resp.env == 3
    assert isinstance(RecordedServer(lambda r: {"message": "boom"}).run(Command(cmd="x")),
                      LeanError)
    with pytest.raises(Exception):  # noqa: B017 - pydantic's ValidationError
        RecordedServer(lambda r: {"messages": [{"severity": "fatal"}], "env": 0}).run(
            Command(cmd="x", env=0))


@pytest.mark.parametrize("warning", ["declaration uses `sorry`",  # Lean v4.33 (transcripts)
                                     "declaration uses 'sorry'"])  # older Lean
def test_sorry_warning_both_spellings(warning: str) -> None:
    from verimath.prover.audit import LeanMessage, LeanResponse, audit_response, prepare

    task = ProofTask("theorem t (x : ℕ) : x = x := by", "", "  rfl", "t")
    cmd, findings = prepare(task)
    assert cmd is not None and not findings
    resp = LeanResponse((LeanMessage("warning", warning, 1, 8),
                         LeanMessage("info", "'verimath_pinned' depends on axioms: [sorryAx]",
                                     cmd.axioms_line, 0)))
    report = audit_response(cmd, resp)
    assert [f.check for f in report.findings] == ["sorry", "axioms"]
