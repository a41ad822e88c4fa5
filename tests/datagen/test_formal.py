"""Formal stages against scripted doubles: the model is a policy, Lean is ScriptedChecker."""

from __future__ import annotations

import json

import pytest

from verimath.config import load_config
from verimath.datagen.config import (
    DatagenConfig,
    DecontamConfig,
    ExportConfig,
    FormalConfig,
    ProverSettings,
)
from verimath.datagen.formal import extract_statement, parse_judgment, theorem_name
from verimath.datagen.pipeline import Components, ScriptedExportRefused, main
from verimath.prover.scripted import ScriptedChecker
from verimath.testing import ScriptedBackend, question_of

# problem id -> (informal text, what the scripted model does with it)
CASES = {
    "good": "Let a be a natural number with a = 2. Show that a + a = 4.",
    "garbage": "Write something that is not Lean.",
    "nocompile": "Show that b = b for a natural number b.",
    "differs": "Let c be 3. Show that c * c = 9.",
    "false": "Show that for every natural number d, d + 1 = d.",
    "open": "Show that there are infinitely many primes p with p + 2 prime.",
}
STATEMENTS = {
    "good": "theorem t (a : ℕ) (h₀ : a = 2) : a + a = 4 := by sorry",
    "nocompile": "theorem t (b : ℕ) : b = b := by sorry",
    "differs": "theorem t (c : ℕ) (h₀ : c = 3) : c * c = 9 := by sorry",
    "false": "theorem t (d : ℕ) : d + 1 = d := by sorry",
    "open": "theorem t : ∀ n : ℕ, ∃ p, n ≤ p ∧ Nat.Prime p ∧ Nat.Prime (p + 2) := by sorry",
}


def _pid(text: str) -> str:
    return next(k for k, v in CASES.items() if v in text)


def policy(prompt, j, params) -> str:
    q = question_of(prompt)
    if q.startswith("Problem: "):
        pid = _pid(q)
        if pid == "garbage":
            return "I do not know Lean."
        # both samples give the same statement: the second is a duplicate
        return f"Here it is.\n```lean\n{STATEMENTS[pid]}\n```"
    if q.startswith("Original: "):
        return "They differ.\nVERDICT: DIFFERENT" if "c * c" in q else "Same.\nVERDICT: SAME"
    if "¬" in q:  # proving a negation
        return "```lean\nby\n  intro h\n  simpa using h 0\n```"
    if q.startswith("```lean") and "sorry" not in q and ":= by" in q:
        return "```lean\nby\n  subst h₀\n  rfl\n```" if j == 0 else "```lean\nby\n  omega\n```"
    if q.startswith("```lean"):  # back-translation
        stmt = q.strip("`\nlean")
        return f"In words: {stmt[:60]}"
    raise AssertionError(f"unexpected prompt {q!r}")


def _checker() -> ScriptedChecker:
    return ScriptedChecker(
        proofs={theorem_name("good"): ["by\n  subst h₀\n  rfl"],
                theorem_name("false") + "_neg": ["by\n  intro h\n  simpa using h 0"]},
        compiles={theorem_name("nocompile"): False},
    )


def _write_input(path) -> str:
    with open(path, "w") as f:
        for pid, text in CASES.items():
            f.write(json.dumps({"id": pid, "source": "scripted", "informal": text}) + "\n")
        f.write("{not json\n")
    return str(path)


SCRIPTED = ProverSettings(backend="scripted")  # the double, chosen explicitly


def _cfg(tmp_path, allow_scripted: bool = True, **kw) -> DatagenConfig:
    return DatagenConfig(
        mode="formal", inputs=(_write_input(tmp_path / "in.jsonl"),), out=str(tmp_path / "out"),
        decontam=DecontamConfig(enabled=False),
        export=ExportConfig(formats=("jsonl",), allow_scripted=allow_scripted),
        formal=FormalConfig(n_formalizations=2, prover=SCRIPTED), **kw)


def test_formal_pipeline_with_doubles(tmp_path) -> None:
    backend, checker = ScriptedBackend(policy), _checker()
    report = main(_cfg(tmp_path), components=Components(backend=backend, checker=checker))
    out = tmp_path / "out"
    rows = [json.loads(x) for x in (out / "data.jsonl").read_text().splitlines()]
    assert [r["problem_id"] for r in rows] == ["good"]
    row = rows[0]
    assert row["kind"] == "formal" and row["verified_by"] == "proof"
    assert set(row["verdicts"]) == {"compile", "judge", "proof"}
    assert all(v["status"] == "correct" for v in row["verdicts"].values())
    assert row["problem"]["formal_statement"].startswith(f"theorem {theorem_name('good')}")
    assert "subst h₀" in row["messages"][-1]["content"]
    assert row["provenance"]["lean"]["toolchain"] == "scripted"
    double = {"name": "scripted", "test_double": True}
    assert row["provenance"]["checker"] == double  # a double's verdicts say so
    assert row["verdicts"]["compile"]["detail"]["checker"] == double

    reasons = {}
    for r in map(json.loads, (out / "rejected.jsonl").read_text().splitlines()):
        reasons.setdefault(r["reason"].split(":")[0], []).append(r)
    assert set(reasons) >= {"bad_record", "no_statement", "unparsable_statement",
                            "duplicate_statement", "does_not_compile", "inconsistent",
                            "false_formalization", "open"}
    review = [json.loads(x) for x in (out / "review.jsonl").read_text().splitlines()]
    assert [r["problem_id"] for r in review] == ["differs"]
    assert "VERDICT: DIFFERENT" in review[0]["judgment"]
    opened = [json.loads(x) for x in (out / "open.jsonl").read_text().splitlines()]
    assert [o["problem"]["id"] for o in opened] == ["open"]
    assert opened[0]["checker"]["test_double"] is True

    f = {s.stage: s for s in report.funnel.stages}
    assert (f["load"].entered, f["load"].left) == (7, 6)
    assert (f["autoformalize"].entered, f["autoformalize"].left) == (6, 5)
    assert f["autoformalize"].rejected_out == {"duplicate_statement": 5,
                                               "unparsable_statement": 2}
    assert f["autoformalize"].dropped == {"no_statement": 1}
    assert (f["compile"].entered, f["compile"].left) == (5, 4)
    assert (f["judge"].entered, f["judge"].left) == (4, 3)
    assert f["prove"].dropped == {"false_formalization": 1, "open": 1}
    assert report.counts["verified"] == 1
    assert json.loads((out / "funnel.json").read_text())["counts"]["open"] == 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["formal"]["prompt_hashes"]["autoformalize"]


def test_export_refuses_rows_a_double_verified_unless_allowed(tmp_path) -> None:
    with pytest.raises(ScriptedExportRefused, match="--allow-scripted"):
        main(_cfg(tmp_path, allow_scripted=False),
             components=Components(backend=ScriptedBackend(policy), checker=_checker()))
    assert not (tmp_path / "out" / "data.jsonl").exists()


def test_the_default_prover_is_lean_and_without_it_nothing_runs(tmp_path, monkeypatch) -> None:
    from verimath.prover.types import LeanUnavailable

    monkeypatch.setenv("PATH", str(tmp_path))  # no `lake`
    cfg = DatagenConfig(mode="formal", inputs=(_write_input(tmp_path / "in.jsonl"),),
                        out=str(tmp_path / "out"), decontam=DecontamConfig(enabled=False))
    assert cfg.formal.prover.backend == "repl"
    backend = ScriptedBackend(policy)
    with pytest.raises(LeanUnavailable, match="verimath doctor"):
        main(cfg, components=Components(backend=backend))
    assert backend.calls == [] and not (tmp_path / "out" / "stages").exists()


def test_formal_resume_makes_no_new_model_calls(tmp_path) -> None:
    main(_cfg(tmp_path), components=Components(backend=ScriptedBackend(policy),
                                               checker=_checker()))
    first = (tmp_path / "out" / "data.jsonl").read_text()
    again = ScriptedBackend(policy)
    checker = _checker()
    main(_cfg(tmp_path), components=Components(backend=again, checker=checker))
    assert again.calls == [] and checker.calls == []
    assert (tmp_path / "out" / "data.jsonl").read_text() == first


def test_given_statements_skip_autoformalization(tmp_path) -> None:
    inp = tmp_path / "mini.jsonl"
    inp.write_text(json.dumps({
        "name": "good", "split": "valid", "informal_prefix": "/-- " + CASES["good"] + " -/",
        "formal_statement": STATEMENTS["good"].replace(" sorry", ""), "header": "import Mathlib\n",
    }) + "\n")
    cfg = DatagenConfig(mode="formal", inputs=(str(inp),), out=str(tmp_path / "o"),
                        decontam=DecontamConfig(enabled=False),
                        export=ExportConfig(formats=("jsonl",), allow_scripted=True),
                        formal=FormalConfig(use_given_statement=True, prover=SCRIPTED))
    backend = ScriptedBackend(policy)
    report = main(cfg, components=Components(backend=backend, checker=_checker()))
    assert report.counts["verified"] == 1
    assert not any(question_of(p).startswith("Problem: ") for call in backend.calls
                   for p in call[0])


@pytest.mark.parametrize("text,ok", [
    ("```lean\ntheorem foo (x : ℝ) (h : x = 1) : x + 1 = 2 := by sorry\n```", True),
    ("lemma bar : (2 : ℕ) + 2 = 4 := by\n  norm_num", True),
    ("theorem broken (x : ℝ : x = 1 := by sorry", False),
    ("no lean here", False),
])
def test_extract_statement(text: str, ok: bool) -> None:
    from verimath.prover.lean_text import StatementError

    if ok:
        st = extract_statement(text, "renamed")
        assert st.startswith("theorem renamed") and st.endswith(":= by")
    else:
        with pytest.raises(StatementError):
            extract_statement(text, "renamed")


@pytest.mark.parametrize("text,expected", [
    ("reason\nVERDICT: SAME", True), ("VERDICT: different", False),
    ("VERDICT: SAME ... on reflection VERDICT: DIFFERENT", False), ("yes", None),
])
def test_parse_judgment(text: str, expected: bool | None) -> None:
    assert parse_judgment(text) is expected


def test_formal_preset_loads() -> None:
    cfg = load_config(DatagenConfig, "configs/datagen/minif2f_formal.yaml")
    assert cfg.mode == "formal" and cfg.formal.prover.backend == "repl"
    assert "minif2f:test" in cfg.decontam.benchmarks
