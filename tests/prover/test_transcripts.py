"""Real Lean REPL transcripts: every answer parses into our types; the REPL code paths replay them.

The transcripts are the Lean REPL's own regression suite as printed by a real Lean v4.33 REPL
(``$VERIMATH_DATA/lean_repl``, see its README). Nothing here is hand-written Lean output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.prover.transcript_repl import read_transcript
from tests.prover.transcripts import TranscriptLeanServer, lean_repl_dir, transcripts
from verimath.prover.checker import LeanChecker
from verimath.prover.repl import ReplConfig, ReplPool, ReplProofEnv
from verimath.prover.responses import (
    SORRY_WARNINGS,
    LeanResponse,
    classify_step,
    parse_repl_json,
)
from verimath.prover.types import CompileStatus, LeanCrash, LeanVersion, ProofTask, TacticStatus

pytestmark = pytest.mark.skipif(not transcripts(), reason=f"no transcripts in {lean_repl_dir()}")
KNOWN_KEYS = {"env", "messages", "sorries", "tactics", "infotree", "proofStatus", "proofState",
              "goals", "traces"}
LEAN = LeanVersion("leanprover/lean4:v4.33.0-rc2", "transcript")


def _is_tactic(request: dict[str, Any]) -> bool:
    return ("tactic" in request or "unpickleProofStateFrom" in request
            or ("pickleTo" in request and "proofState" in request))


def _pos(d: dict[str, Any] | None) -> tuple[int, int] | None:
    return (d["line"], d["column"]) if d is not None else None


def _same_as_raw(lr: LeanResponse, raw: dict[str, Any]) -> None:
    """Every field of the raw answer is in ``lr`` with the same value."""
    assert set(raw) <= KNOWN_KEYS, f"fields not carried: {set(raw) - KNOWN_KEYS}"
    assert lr.env == raw.get("env")
    assert [(m.severity, m.text, (m.line, m.column), _pos({"line": m.end_line,
             "column": m.end_column}) if m.end_line is not None else None)
            for m in lr.messages] == [
        (m["severity"], m["data"], _pos(m["pos"]), _pos(m.get("endPos")))
        for m in raw.get("messages", [])]
    assert [(s.goal, s.proof_state, (s.line, s.column),
             (s.end_line, s.end_column) if s.end_line is not None else None)
            for s in lr.sorry_info] == [
        (s["goal"], s.get("proofState"), _pos(s.get("pos")) or (0, 0), _pos(s.get("endPos")))
        for s in raw.get("sorries", [])]
    assert lr.sorries == tuple(s["goal"] for s in raw.get("sorries", []))
    assert [(t.tactic, t.goals, t.proof_state, (t.line, t.column), (t.end_line, t.end_column),
             list(t.used_constants)) for t in lr.tactics] == [
        (t["tactic"], t["goals"], t.get("proofState"), _pos(t["pos"]), _pos(t["endPos"]),
         t.get("usedConstants", [])) for t in raw.get("tactics", [])]
    assert lr.proof_status == raw.get("proofStatus")
    assert lr.proof_state == raw.get("proofState")
    assert list(lr.goals) == raw.get("goals", [])
    assert list(lr.traces) == raw.get("traces", [])
    if "infotree" in raw:
        assert lr.infotree is not None and len(lr.infotree) == len(raw["infotree"])


@pytest.mark.parametrize("path", transcripts(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_answer_parses_with_nothing_dropped(path: Path) -> None:
    for request, text in read_transcript(path):
        raw = json.loads(text)
        lr = parse_repl_json(raw, tactic=_is_tactic(request))
        if isinstance(lr, str):
            assert set(raw) == {"message"} and lr == raw["message"]
            if "tactic" in request:
                if lr.startswith("Lean error:"):
                    assert classify_step(lr)[0] is TacticStatus.ERROR
                else:
                    with pytest.raises(LeanCrash):
                        classify_step(lr)
            continue
        _same_as_raw(lr, raw)
        if "tactic" in request:
            classify_step(lr)  # every proofStatus the real REPL sends is known (no raise)


#: (transcript, tactic sent, status, message fragment) — every status the REPL gives a row.
STEP_CASES = [
    ("core/proof_step", "apply Int.natAbs", TacticStatus.OPEN, ""),
    ("core/proof_step", "exact t", TacticStatus.PROVED, ""),
    ("core/tactic_mode_sorry", "sorry", TacticStatus.GIVEN_UP, "contains sorry"),
    ("core/invalid_tactic", "exact my_fake_premise", TacticStatus.ERROR, "Unknown identifier"),
    ("core/unknown_tactic", None, TacticStatus.ERROR, "unknown tactic"),
    ("core/app_type_mismatch", "apply ?succ", TacticStatus.ERROR, "metavariable"),
    ("core/app_type_mismatch2", "have: true := by\n    apply ?succ\n    trivial",
     TacticStatus.ERROR, "kernel type check failed"),
    ("core/self_proof_exact_check", "exact ex", TacticStatus.ERROR, "kernel type check failed"),
    ("mathlib/exact", "exact?", TacticStatus.PROVED, ""),
    ("mathlib/20240209", "simpa using show False by done", TacticStatus.ERROR,
     "unsolved goals"),
]


@pytest.mark.parametrize(("name", "tactic", "status", "fragment"), STEP_CASES)
def test_tactic_answers_classify(name: str, tactic: str | None, status: TacticStatus,
                                 fragment: str) -> None:
    pairs = [(r, t) for r, t in read_transcript(lean_repl_dir() / f"{name}.in")
             if "tactic" in r and (tactic is None or r["tactic"] == tactic)]
    assert pairs, f"{name} has no tactic {tactic!r}"
    got, msg = classify_step(parse_repl_json(json.loads(pairs[0][1]), tactic=True))
    assert got is status and fragment in msg


def test_failing_exact_query_is_a_tactic_error() -> None:
    pairs = [t for r, t in read_transcript(lean_repl_dir() / "mathlib/exact.in") if "tactic" in r]
    got, msg = classify_step(parse_repl_json(json.loads(pairs[1]), tactic=True))
    assert got is TacticStatus.ERROR and "could not close the goal" in msg


def test_unknown_state_replies_are_infrastructure() -> None:
    for name in ("core/unknown_proof_state", "core/unknown_environment"):
        answers = [json.loads(t) for _, t in read_transcript(lean_repl_dir() / f"{name}.in")]
        lost = [a["message"] for a in answers if set(a) == {"message"}]
        assert lost and lost[0] in ("Unknown proof state.", "Unknown environment.")
        with pytest.raises(LeanCrash):
            classify_step(lost[0])


def test_positions_sorry_text_and_tactic_message_anchoring() -> None:
    """What the audit relies on, as the real REPL prints it."""
    cmd = read_transcript(lean_repl_dir() / "core/no_goal_sorry.in")[0]
    lr = parse_repl_json(json.loads(cmd[1]))
    assert isinstance(lr, LeanResponse)
    assert [m.line for m in lr.messages] == [2, 2]  # line 2 of the command sent, 1-based
    warn = parse_repl_json(json.loads(read_transcript(
        lean_repl_dir() / "core/tactic_sorry.in")[0][1]))
    assert isinstance(warn, LeanResponse) and warn.uses_sorry
    assert warn.messages[0].text == "declaration uses `sorry`" and warn.messages[0].text in \
        SORRY_WARNINGS
    assert (warn.messages[0].line, warn.messages[0].column) == (1, 4)  # at the name `f`
    step = parse_repl_json(json.loads(read_transcript(
        lean_repl_dir() / "core/invalid_tactic.in")[1][1]), tactic=True)
    assert isinstance(step, LeanResponse) and step.messages[0].line == 0


def _pool(*names: str, **kw: Any) -> tuple[ReplPool, list[TranscriptLeanServer]]:
    made: list[TranscriptLeanServer] = []

    def factory() -> TranscriptLeanServer:
        made.append(TranscriptLeanServer(*names))
        return made[-1]

    return ReplPool(ReplConfig(workers=1, **kw), LEAN, server_factory=factory), made


def test_repl_proof_env_replays_proof_step_through_lean_interact() -> None:
    pool, made = _pool("core/proof_step")
    env = ReplProofEnv(pool)
    try:
        root = env.start(ProofTask("def f : Nat := by", name="f"))
        assert root.pp == "⊢ Nat"
        a = env.run_tactic(root, "apply Int.natAbs")
        assert a.status is TacticStatus.OPEN and a.state is not None and a.state.pp == "⊢ Int"
        b = env.run_tactic(root, "have t : Nat := 42")
        assert b.status is TacticStatus.OPEN and b.state is not None
        assert b.state.pp == "t : Nat\n⊢ Nat"
        done = env.run_tactic(b.state, "exact t")
        assert done.status is TacticStatus.PROVED
        assert pool._live and next(iter(pool._live)).proof_states == 4  # 1 sorry + 3 steps
    finally:
        env.close()
        pool.close()
    assert len(made) == 1 and not made[0].is_alive()


def test_unknown_proof_state_replaces_the_process() -> None:
    pool, made = _pool("core/unknown_proof_state")
    env = ReplProofEnv(pool)
    try:
        root = env.start(ProofTask("def f : Nat := by", name="f"))
        env._handles[()] = 1  # a handle the process does not hold
        out = env.run_tactic(root, "exact 42")
        assert out.status is TacticStatus.CRASHED and "Unknown proof state" in out.message
        assert pool.stats.retired_crash == 1 and len(made) == 2 and not made[0].is_alive()
    finally:
        env.close()
        pool.close()


def test_header_env_reused_across_theorems_mathlib(monkeypatch: pytest.MonkeyPatch) -> None:
    import verimath.prover.envbase as envbase

    # the only Mathlib transcript with two theorems sends `exact?`, which the audit screens out
    # of proofs (issue 18); this test is about the header env, so the screen is lifted here
    monkeypatch.setattr(envbase, "screen_tactic", lambda tactic: [])
    pool, made = _pool("mathlib/exact")
    env = ReplProofEnv(pool)
    try:
        root = env.start(ProofTask("theorem test : 0 < 1 := by", "import Mathlib", name="test"))
        assert env.run_tactic(root, "exact?").status is TacticStatus.PROVED
        root2 = env.start(ProofTask("theorem test : 3 = 7 := by", "import Mathlib"))
        bad = env.run_tactic(root2, "exact?")
        assert bad.status is TacticStatus.ERROR and "could not close" in bad.message
        assert len(made) == 1  # one process, `import Mathlib` elaborated once
        header_cmds = [k for k in next(iter(pool._live)).envs if k]
        assert header_cmds == [("import Mathlib",)]
    finally:
        env.close()
        pool.close()


def test_checker_compile_filter_on_transcript() -> None:
    pool, _ = _pool("core/have_by_sorry")
    request, _ = read_transcript(lean_repl_dir() / "core/have_by_sorry.in")[0]
    checker = LeanChecker(pool)
    try:
        stmt = request["cmd"].split(":= by")[0] + ":= by"
        res = checker.check_statement(stmt)
    finally:
        checker.close()
    assert res.status is CompileStatus.OK, res
    assert res.goal and "⊢" in res.goal


def test_recycled_after_max_proof_states_mid_search() -> None:
    pool, made = _pool("core/proof_step", max_proof_states=2)
    env = ReplProofEnv(pool)
    try:
        root = env.start(ProofTask("def f : Nat := by", name="f"))
        b = env.run_tactic(root, "have t : Nat := 42")  # worker now holds 2 states
        assert b.state is not None
        done = env.run_tactic(b.state, "exact t")  # recycled first, path replayed
        assert done.status is TacticStatus.PROVED
        assert env.recycles == 1 and env.restarts == 0 and len(made) == 2
        assert pool.stats.retired_states == 1 and not made[0].is_alive()
    finally:
        env.close()
        pool.close()
