"""Whole-proof generation, the ``verimath prove`` job, and the prove / check / doctor CLIs.

Models are ``verimath.testing.ScriptedBackend`` policies; Lean is the scripted checker / env.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from verimath.backends import SamplingParams
from verimath.cli import main as cli
from verimath.prover.evaluation import ProveConfig, main, score
from verimath.prover.scripted import ScriptedChecker, ScriptedEnv
from verimath.prover.search import SearchConfig
from verimath.prover.types import TacticStatus
from verimath.prover.whole import WholeProofGenerator, informal_prefix
from verimath.records import Problem, VerdictStatus
from verimath.testing import ScriptedBackend

S10 = ("theorem amc12a_2015_p10 (x y : ℤ) (h₀ : 0 < y) (h₁ : y < x) (h₂ : x + y + x * y = 80) "
       ": x = 26 := by\n")
PROOF = "  nlinarith [h₂]\n"
P10 = Problem("amc12a_2015_p10", "minif2f", "Show x = 26.", formal_statement=S10,
              header="import Mathlib\n\n")


def _stmt_of(prompt: Any) -> str:
    text = prompt if isinstance(prompt, str) else prompt[-1]["content"]
    return text


def test_whole_proof_first_try_and_prompt_shape() -> None:
    be = ScriptedBackend(lambda p, j, params: (PROOF if j == 0 else "  linarith\n") + "```\nok")
    checker = ScriptedChecker({"amc12a_2015_p10": ["by\n  nlinarith [h₂]"]})
    gen = WholeProofGenerator(be, checker, SamplingParams(n=3, temperature=1.0))
    [atts] = gen.run([P10])
    assert [a.correct for a in atts] == [True, False, False]
    prompt, params = be.calls[0][0][0], be.calls[0][1]
    assert prompt.endswith(informal_prefix(P10) + S10) and "```lean4\nimport Mathlib" in prompt
    assert "```" in params.stop and params.n == 3
    d = atts[0].to_dict()
    assert d["correct"] is True and d["rounds"][0]["verdict"]["status"] == "correct"


def test_whole_proof_correction_rounds_feed_errors_back() -> None:
    seen: list[str] = []

    def policy(prompt: Any, j: int, params: SamplingParams) -> str:
        text = _stmt_of(prompt)
        seen.append(text)
        return PROOF if "earlier attempt" in text else "  linarith\n"

    checker = ScriptedChecker({"amc12a_2015_p10": ["by\n  nlinarith [h₂]"]})
    gen = WholeProofGenerator(ScriptedBackend(policy), checker,
                              SamplingParams(n=2, temperature=1.0), rounds=2)
    [atts] = gen.run([P10])
    assert all(a.correct for a in atts) and all(len(a.proofs) == 2 for a in atts)
    assert "scripted: not an accepted proof" in seen[-1] and "linarith" in seen[-1]


def test_infrastructure_failures_are_not_corrected_and_not_scored() -> None:
    checker = ScriptedChecker(judge=lambda t: VerdictStatus.ERROR)
    be = ScriptedBackend(lambda p, j, params: PROOF)
    [atts] = WholeProofGenerator(be, checker, SamplingParams(n=2), rounds=1).run([P10])
    assert [a.correct for a in atts] == [None, None] and len(be.calls) == 1
    assert atts[0].verdict.status is VerdictStatus.ERROR


def test_a_proof_that_runs_lean_out_of_time_is_a_failed_attempt() -> None:
    checker = ScriptedChecker(judge=lambda t: VerdictStatus.TIMEOUT)  # Lean's time limit hit
    be = ScriptedBackend(lambda p, j, params: PROOF)
    [atts] = WholeProofGenerator(be, checker, SamplingParams(n=2), rounds=1).run([P10])
    assert [a.correct for a in atts] == [False, False]
    assert atts[0].verdict.status is VerdictStatus.UNVERIFIABLE


def test_chat_prompts_and_full_snippet_answers() -> None:
    answer = f"Sure:\n```lean4\nimport Mathlib\n\n{S10}{PROOF}```"
    be = ScriptedBackend(lambda p, j, params: answer)
    checker = ScriptedChecker({"amc12a_2015_p10": ["by\n  nlinarith [h₂]"]})
    [atts] = WholeProofGenerator(be, checker, SamplingParams(n=1), chat=True).run([P10])
    assert atts[0].correct
    assert isinstance(be.calls[0][0][0], list) and "```" not in be.calls[0][1].stop


def test_score_excludes_infrastructure_failures() -> None:
    recs = [{"attempts": [{}] * 4, "n_judged": 4, "n_correct": 1, "n_infra": 0},
            {"attempts": [{}] * 4, "n_judged": 2, "n_correct": 0, "n_infra": 2},
            {"attempts": [{}] * 4, "n_judged": 0, "n_correct": 0, "n_infra": 4}]
    s = score(recs, (1, 4))
    assert s["pass@k"]["1"] == pytest.approx((0.25 + 0.0) / 2)
    assert s["pass@k"]["4"] == 1.0 and s["problems_per_k"] == {"1": 2, "4": 1}
    assert s["n_infra_failures"] == 6 and s["n_solved"] == 1


def _policy_solving(names: set[str]) -> Any:
    def policy(prompt: Any, j: int, params: SamplingParams) -> str:
        text = _stmt_of(prompt)
        return PROOF if any(f"theorem {n} " in text for n in names) and j == 0 else "  simp\n"
    return policy


def test_prove_job_whole_mode_records_summary_resume(tmp_path: Path, shared_data: Path) -> None:
    out = tmp_path / "run"
    cfg = ProveConfig(benchmark="minif2f", split="valid", limit=3, n=2, k=(1, 2), out=str(out))
    first_three = [json.loads(x)["name"] for x in
                   (shared_data / "minif2f" / "minif2f.jsonl").open()][:3]
    checker = ScriptedChecker({first_three[0]: ["by\n  nlinarith [h₂]"]})
    be = ScriptedBackend(_policy_solving({first_three[0]}))
    rep = main(cfg, progress=False, backend=be, checker=checker)
    s = rep.summary
    assert rep.n_problems == 3 and s["n_solved"] == 1 and s["n_attempts"] == 6
    assert s["pass@k"]["1"] == pytest.approx(0.5 / 3) and s["pass@k"]["2"] == pytest.approx(1 / 3)
    assert s["lean"] == {"toolchain": "scripted", "mathlib_rev": "scripted"}
    recs = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    assert [r["id"] for r in recs] == first_three
    v = recs[0]["attempts"][0]["rounds"][0]["verdict"]
    assert v["status"] == "correct" and v["detail"]["lean"]["toolchain"] == "scripted"
    man = json.loads((out / "manifest.json").read_text())
    assert man["job"] == "prove" and man["lean"]["toolchain"] == "scripted"
    assert man["audit_version"] and man["prompt_hash"]
    assert json.loads((out / "summary.json").read_text())["n_solved"] == 1
    # resume: nothing is regenerated, nothing duplicated
    calls = len(be.calls)
    rep2 = main(cfg, progress=False, backend=be, checker=checker)
    assert len(be.calls) == calls and rep2.summary["n_solved"] == 1
    assert len((out / "records.jsonl").read_text().splitlines()) == 3
    # a different setting in the same folder is refused
    with pytest.raises(ValueError, match="different settings"):
        main(ProveConfig(**{**cfg.__dict__, "n": 4, "k": (1,)}), progress=False, backend=be,
             checker=checker)


def test_prove_job_resumes_after_an_interruption(tmp_path: Path) -> None:
    cfg = ProveConfig(benchmark="minif2f", split="test", limit=4, n=1, k=(1,),
                      out=str(tmp_path), batch_size=1)
    checker = ScriptedChecker()

    class Dies(Exception):
        pass

    state = {"n": 0}

    def policy(prompt: Any, j: int, params: SamplingParams) -> str:
        state["n"] += 1
        if state["n"] == 3:
            raise Dies()
        return "  simp\n"

    with pytest.raises(Dies):
        main(cfg, progress=False, backend=ScriptedBackend(policy), checker=checker)
    assert len((tmp_path / "records.jsonl").read_text().splitlines()) == 2
    main(cfg, progress=False, backend=ScriptedBackend(lambda *a: "  simp\n"), checker=checker)
    ids = [json.loads(x)["id"] for x in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert len(ids) == 4 == len(set(ids))


def test_prove_job_bfs_mode(tmp_path: Path, shared_data: Path) -> None:
    rows = [json.loads(x) for x in (shared_data / "minif2f" / "minif2f.jsonl").open()]
    row = next(r for r in rows if r["name"] == "mathd_numbertheory_66")
    tree = {row["goal"]: {"norm_num": "", "simp": TacticStatus.ERROR}}
    env = ScriptedEnv(tree, {"mathd_numbertheory_66": row["goal"]})
    checker = ScriptedChecker({"mathd_numbertheory_66": ["by\n  norm_num"]})

    def policy(prompt: Any, j: int, params: SamplingParams) -> str:
        return "norm_num" if j == 0 else "simp"

    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(row) + "\n")
    cfg = ProveConfig(benchmark=str(path), split=None, mode="bfs", n=1, k=(1,),
                      out=str(tmp_path / "out"),
                      search=SearchConfig(width=2, max_expansions=4))
    rep = main(cfg, progress=False, backend=ScriptedBackend(policy), checker=checker, env=env)
    assert rep.summary["n_solved"] == 1 and rep.summary["mean_nodes"] == 1
    rec = json.loads((tmp_path / "out" / "records.jsonl").read_text())
    att = rec["attempts"][0]
    assert att["search"]["status"] == "proved" and att["verdict"]["status"] == "correct"
    assert checker.calls[-1].proof == "by\n  norm_num"


@pytest.mark.parametrize("preset", sorted((REPO / "configs" / "prove").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_presets_load(preset: Path) -> None:
    from verimath.config import load_config

    cfg = load_config(ProveConfig, preset, ["search.width=4", "repl.workers=1"])
    assert cfg.search.width == 4 and cfg.repl.workers == 1 and cfg.benchmark == "minif2f"


def test_prove_config_validation() -> None:
    with pytest.raises(ValueError, match="every k"):
        ProveConfig(n=2, k=(1, 8))
    with pytest.raises(ValueError, match="mode"):
        ProveConfig(mode="dfs")


# ------------------------------------------------------------------ CLIs without Lean
@pytest.fixture
def no_lean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.delenv("VERIMATH_LEAN_PROJECT", raising=False)
    return tmp_path


def test_prove_cli_without_lean_fails_fast(no_lean: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = no_lean / "run"
    rc = cli(["prove", "--benchmark", "minif2f", "--split", "test", "--model", "default",
              "--mode", "whole", "--n", "2", "--k", "1", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "verimath doctor" in err and "lake" in err and "Traceback" not in err
    assert not out.exists()  # nothing scored, nothing written


def test_check_cli_without_lean_fails_fast(no_lean: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    f = no_lean / "p.jsonl"
    f.write_text(json.dumps({"name": "t", "formal_statement": S10, "proof": PROOF}) + "\n")
    assert cli(["check", str(f)]) == 2
    assert "verimath doctor" in capsys.readouterr().err


def test_check_cli_audits_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    from verimath.commands import check_cmd

    checker = ScriptedChecker({"amc12a_2015_p10": ["by\n  nlinarith [h₂]"]})
    monkeypatch.setattr(check_cmd, "_build", lambda args: checker)
    f = tmp_path / "p.jsonl"
    rows = [{"name": "a", "formal_statement": S10, "proof": PROOF},
            {"name": "b", "formal_statement": S10, "proof": "  native_decide\n"},
            {"name": "c", "formal_statement": S10},
            {"name": "d", "formal_statement": S10, "proof": PROOF, "header": 3}]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    rc = cli(["check", str(f)])
    cap = capsys.readouterr()
    lines = [json.loads(x) for x in cap.out.splitlines()]
    assert [(x["name"], x["verdict"]["status"]) for x in lines] == [("a", "correct"),
                                                                     ("b", "wrong")]
    assert lines[1]["verdict"]["detail"]["failed"] == "forbidden_construct"
    assert rc == 1 and ":3: field 'proof'" in cap.err and ":4: field 'header'" in cap.err
    assert ":5: not valid JSON" in cap.err and "3 bad record(s)" in cap.err
    assert checker.calls[0].header.startswith("import Mathlib")


def test_doctor_reports_missing_lean_with_fixes(no_lean: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from verimath.commands.doctor_cmd import collect

    checks = {c.name: c for c in collect()}
    assert not checks["lake"].ok and "elan-init.sh" in checks["lake"].fix
    assert not checks["Lean project"].ok and "lake new" in checks["Lean project"].fix
    assert checks["lean-interact"].ok and checks["lean-dojo"].ok
    assert "LeanDojo cache" in checks and "embedded model" in checks
    assert cli(["doctor", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert {d["name"] for d in data} >= {"lake", "lean", "Mathlib", "bwrap", "sandbox",
                                         "torch / CUDA"}


def test_doctor_reads_a_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from verimath.commands.doctor_cmd import collect
    from verimath.prover.toolchain import read_project

    (tmp_path / "lean-toolchain").write_text("leanprover/lean4:v4.9.0\n")
    (tmp_path / "lake-manifest.json").write_text(json.dumps(
        {"name": "verimath_lean", "packages": [{"name": "mathlib", "rev": "abc123def"}]}))
    p = read_project(tmp_path)
    assert p.version.toolchain == "leanprover/lean4:v4.9.0" and p.mathlib_rev == "abc123def"
    assert not p.built
    checks = {c.name: c for c in collect(str(tmp_path))}
    assert checks["Mathlib"].ok and "abc123def" in checks["Mathlib"].found
    assert not checks["project built"].ok and "lake build" in checks["project built"].fix


def test_prove_shards_merge_into_the_unsharded_run(tmp_path: Path, shared_data: Path) -> None:
    import dataclasses

    first = [json.loads(x)["name"] for x in
             (shared_data / "minif2f" / "minif2f.jsonl").open()][:4]
    checker = ScriptedChecker({first[0]: ["by\n  nlinarith [h₂]"]})
    cfg = ProveConfig(benchmark="minif2f", split="valid", limit=4, n=2, k=(1, 2),
                      out=str(tmp_path / "whole"))
    whole = main(cfg, progress=False, backend=ScriptedBackend(_policy_solving({first[0]})),
                 checker=checker)
    outs = []
    for i in range(2):
        c = dataclasses.replace(cfg, out=str(tmp_path / f"s{i}"), shard=f"{i}/2")
        main(c, progress=False, backend=ScriptedBackend(_policy_solving({first[0]})),
             checker=checker)
        outs.append(c.out)
    assert cli(["merge", *outs, "--out", str(tmp_path / "m")]) == 0
    assert json.loads((tmp_path / "m" / "summary.json").read_text()) == whole.summary

    def ids(d: Path) -> list[str]:
        return [json.loads(x)["id"] for x in (d / "records.jsonl").read_text().splitlines()]

    assert ids(tmp_path / "m") == ids(tmp_path / "whole") == first


def test_prove_retries_problems_lean_could_not_judge(tmp_path: Path, shared_data: Path) -> None:
    cfg = ProveConfig(benchmark="minif2f", split="valid", limit=2, n=1, k=(1,),
                      out=str(tmp_path), infra_retries=1)
    first = [json.loads(x)["name"] for x in
             (shared_data / "minif2f" / "minif2f.jsonl").open()][:2]
    flaky = ScriptedChecker(judge=lambda t: VerdictStatus.ERROR)  # a crashed / lost Lean
    rep = main(cfg, progress=False, backend=ScriptedBackend(_policy_solving({first[0]})),
               checker=flaky)
    assert rep.summary["n_infra_failures"] == 2 and rep.summary["n_judged"] == 0
    be = ScriptedBackend(_policy_solving({first[0]}))
    works = ScriptedChecker({first[0]: ["by\n  nlinarith [h₂]"]})
    again = main(cfg, progress=False, backend=be, checker=works)
    assert sum(len(p) for p, _ in be.calls) == 2  # both problems run again
    assert again.summary["n_infra_failures"] == 0 and again.summary["n_solved"] == 1
