"""`verimath iterate`: one tiny round end to end (real SFT on the tiny model), resume, refusals.

Generation (eval and model datagen) is a scripted policy that knows the gold answers, so the
expected numbers are exact: eval accuracy 1/3, verified yield 3/6. Seed synthesis, the sandbox,
the grader, decontamination and SFT (LoRA, merged final/) are the real code paths.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import verimath.rl.iterate as it
from tests.verimath.tiny_model import tiny_model_dir
from verimath.config import ConfigError, load_config
from verimath.jobs import SettingsMismatch

PRESET = "configs/iterate/gsm8k_pot.yaml"


def cfg_for(out: Path, *extra: str) -> it.IterateConfig:
    """The shipped preset shrunk to 3 eval problems, 2 seed / 3 datagen problems, 1 SFT step."""
    return load_config(it.IterateConfig, PRESET, [
        f"model={tiny_model_dir()}", f"out={out}", "rounds=1", "self_samples_from=1",
        "eval.limit=3", "seed.limit=2", "datagen.limit=3", "datagen.solve.n=2",
        "sft.max_length=1000", "sft.train.max_steps=1", "sft.train.per_device_train_batch_size=2",
        "sft.train.save_steps=1", "sft.train.learning_rate=0.001", *extra])


def _gold() -> dict[str, str]:
    from verimath.datasets import load_problems

    out = {}
    for spec in ("gsm8k", "gsm8k_train"):
        for p in load_problems(spec, limit=3).problems:
            out[p.informal] = str(p.answer)
    return out


class Policy:
    """Scripted model: the base model is right on eval problem 0, a trained one on problems 0-1;
    on datagen problems every model is right on sample 0 only."""

    def __init__(self) -> None:
        from verimath.datasets import load_problems

        self.gold = _gold()
        self.eval_qs = [p.informal for p in load_problems("gsm8k", limit=3).problems]
        self.models: list[str] = []

    def __call__(self, prompt, j, params, model: str) -> str:
        from verimath.testing import question_of

        q = question_of(prompt)
        solved = 2 if model.endswith("final") else 1
        right = q in self.eval_qs[:solved] if q in self.eval_qs else j == 0
        value = self.gold[q] if right else "-12345"
        return f"```python\nprint({value})\n```"

    def backend_for(self, model: str):
        from verimath.testing import ScriptedBackend

        self.models.append(model)
        return ScriptedBackend(lambda p, j, params: self(p, j, params, model))


class Calls:
    """Wraps the sub-jobs of verimath.rl.iterate to count calls (and optionally fail one)."""

    def __init__(self, monkeypatch, fail: str | None = None) -> None:
        self.n = {"run_eval": 0, "run_datagen": 0, "run_sft": 0}
        for name in self.n:
            real = getattr(it, name)

            def wrapped(*a, _name=name, _real=real, **kw):
                self.n[_name] += 1
                if _name == fail:
                    raise RuntimeError(f"simulated kill in {_name}")
                return _real(*a, **kw)

            monkeypatch.setattr(it, name, wrapped)


def _no_timing(path: Path) -> list[dict]:
    rows = json.loads(path.read_text())["rounds"]
    return [{k: v for k, v in r.items() if k != "timing"} for r in rows]


def test_one_round_end_to_end_then_resume_skips_everything_done(tmp_path, monkeypatch):
    from verimath.reasoning.metrics import wilson_interval

    out = tmp_path / "it"
    pol = Policy()
    # 1. killed within round 1: after its datagen, in SFT
    with monkeypatch.context() as m:
        calls = Calls(m, fail="run_sft")
        with pytest.raises(RuntimeError, match="simulated kill"):
            it.run_iterate(cfg_for(out), backend_for=pol.backend_for)
    assert calls.n == {"run_eval": 1, "run_datagen": 2, "run_sft": 1}  # seed + round-1 datagen
    assert (out / "round_0" / "eval" / "summary.json").is_file()
    assert not (out / "round_1" / "checkpoint" / "final").exists()

    # 2. re-run: only SFT and round 1's eval run
    with monkeypatch.context() as m:
        calls = Calls(m)
        rep = it.run_iterate(cfg_for(out), backend_for=pol.backend_for)
    assert calls.n == {"run_eval": 1, "run_datagen": 0, "run_sft": 1}
    final = out / "round_1" / "checkpoint" / "final"
    assert (final / "config.json").is_file() and (final / "model.safetensors").is_file()
    assert pol.models[-1] == str(final)  # round 1 is evaluated with the trained model
    r0, r1 = rep.rounds
    for r, solved in ((r0, 1), (r1, 2)):
        assert r["accuracy"] == pytest.approx(solved / 3) and r["n_problems"] == 3
        assert r["accuracy_ci95"] == pytest.approx(list(wilson_interval(solved, 3)))
    assert r0["verified_yield"] is None and r0["data"] is None and r0["gain_vs_base"] is None
    g = r1["gain_vs_base"]
    assert (g["gain"], g["problems"], g["left_out"]) == (pytest.approx(1 / 3), 3, 0)
    assert g["ci95"][0] <= 0 < 1 / 3 <= g["ci95"][1]
    assert (r1["verified"], r1["attempts"], r1["kept"]) == (3, 6, 3)
    assert r1["verified_yield"] == pytest.approx(0.5)
    seed_rows = sum(1 for _ in open(out / "seed" / "data.jsonl"))
    assert r1["data"] == {"seed": seed_rows, "generated": 3, "train": seed_rows + 3}
    assert seed_rows > 0 and r1["sft_steps"] == 1
    dec = r1["decontamination"]
    assert dec["benchmarks"] == ["gsm8k", "math500"]
    assert dec["seed"]["decontaminate"] == {"entered": 2, "dropped": 0}
    assert dec["generated"]["decontaminate"] == {"entered": 3, "dropped": 0}
    assert {"generation_s", "verification_s", "training_s", "eval_s"} <= set(r1["timing"])
    assert (out / "rounds.png").stat().st_size > 0
    before = _no_timing(out / "rounds.json")

    # 3. killed between rounds: rounds=2 skips rounds 0-1 entirely (its datagen fails here)
    with monkeypatch.context() as m:
        calls = Calls(m, fail="run_datagen")
        with pytest.raises(RuntimeError, match="simulated kill"):
            it.run_iterate(cfg_for(out, "rounds=2"), backend_for=pol.backend_for)
    assert calls.n == {"run_eval": 0, "run_datagen": 1, "run_sft": 0}
    assert _no_timing(out / "rounds.json") == before

    # 4. a changed setting is refused, naming the key, nothing written
    manifest = (out / "manifest.json").read_text()
    with pytest.raises(SettingsMismatch, match="eval.max_tokens") as e:
        it.run_iterate(cfg_for(out, "eval.max_tokens=100"), backend_for=pol.backend_for)
    assert e.value.keys == ["eval.max_tokens"]
    assert (out / "manifest.json").read_text() == manifest
    (out / "manifest.json").unlink()  # rounds whose settings cannot be checked: refused too
    with pytest.raises(SettingsMismatch, match="no manifest.json"):
        it.run_iterate(cfg_for(out), backend_for=pol.backend_for)


@pytest.mark.parametrize(("override", "message"), [
    ("grpo.job.data.strategy=cot", None),
    ("grpo.enabled=true grpo.job.data.strategy=cot", "must be the eval strategy"),
    ("grpo.job.lora.merge_on_save=false grpo.enabled=true", "grpo.job.lora.merge_on_save"),
    ("datagen.decontam.benchmarks=[math500]", "datagen.decontam must be enabled and list"),
    ("seed.decontam.enabled=false", "seed.decontam must be enabled"),
    ("datagen.mode=reference", "datagen.mode must be 'informal'"),
    ("sft.lora.merge_on_save=false", "merge_on_save must be true"),
    ("eval.shard=0/2", "eval.shard"),
])
def test_bad_config_is_refused_naming_the_key(tmp_path, override, message):
    if message is None:  # GRPO settings are only checked when the phase is on
        cfg_for(tmp_path / "x", *override.split())
        return
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        cfg_for(tmp_path / "x", *override.split())


def test_cli_config_error_exits_2_and_writes_nothing(tmp_path, capsys):
    from verimath.cli import main

    rc = main(["iterate", "--config", PRESET, "--out", str(tmp_path / "o"),
               "datagen.mode=reference"])
    assert rc == 2
    assert "verimath iterate:" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_grpo_phase_trains_after_sft_and_its_model_is_evaluated(tmp_path):
    out = tmp_path / "g"
    pol = Policy()
    rep = it.run_iterate(cfg_for(out, "self_samples_from=2",  # round 1: seed data only
                                 "grpo.enabled=true", "grpo.job.grpo.num_generations=2",
                                 "grpo.job.grpo.max_completion_length=8",
                                 "grpo.job.train.per_device_train_batch_size=2",
                                 "grpo.job.train.max_steps=1", "grpo.job.train.save_steps=1"),
                         backend_for=pol.backend_for)
    grpo_final = out / "round_1" / "grpo" / "final"
    assert (grpo_final / "config.json").is_file()
    assert pol.models[-1] == str(grpo_final)  # the round's model is the GRPO one
    r1 = rep.rounds[1]
    assert r1["sft_steps"] == 1 and r1["grpo_steps"] == 1 and "grpo_s" in r1["timing"]
    prompts = [json.loads(x) for x in open(out / "round_1" / "data" / "grpo_prompts.jsonl")]
    seed_ids = {json.loads(x)["problem"]["id"] for x in open(out / "seed" / "data.jsonl")}
    assert prompts and {p["id"] for p in prompts} == seed_ids and all(p["answer"] for p in prompts)
    manifest = json.loads((out / "round_1" / "grpo" / "manifest.json").read_text())
    assert manifest["config"]["model"] == str(out / "round_1" / "checkpoint" / "final")


def _eval_dir(path: Path, correct: dict[str, bool | None]) -> Path:
    path.mkdir(parents=True)
    with open(path / "records.jsonl", "w") as f:
        for pid, c in correct.items():
            f.write(json.dumps({"id": pid, "attempts": [{"correct": c}]}) + "\n")
    return path


def test_paired_gain_pairs_by_problem_and_leaves_out_unjudged(tmp_path):
    from verimath.reasoning.metrics import bootstrap_mean_ci
    from verimath.rl.iterate_report import paired_gain

    base = _eval_dir(tmp_path / "a", {"p1": True, "p2": False, "p3": False, "p4": None,
                                      "p5": False})
    new = _eval_dir(tmp_path / "b", {"p5": True, "p3": False, "p2": True, "p1": True,
                                     "p4": True, "p6": True})
    g = paired_gain(base, new, n_boot=500)
    assert (g["problems"], g["left_out"], g["only_in_one"]) == (4, 1, 1)
    assert g["gain"] == pytest.approx(2 / 4)  # p1 0, p2 +1, p3 0, p5 +1
    assert g["ci95"] == pytest.approx(list(bootstrap_mean_ci([0, 1, 0, 1], n_boot=500)))
    none = paired_gain(base, _eval_dir(tmp_path / "c", {"p4": None}))
    assert none["gain"] is None and none["ci95"] == [None, None]


def test_cli_kill_9_within_round_1_then_rerun_finishes_without_redoing_datagen(tmp_path):
    """The real CLI (transformers backend on the tiny model, no doubles), killed with SIGKILL."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "it"
    cmd = [sys.executable, "-m", "verimath", "iterate", "--config", PRESET,
           "--model", str(tiny_model_dir()), "--out", str(out), "--rounds", "1",
           "self_samples_from=1", "eval.limit=2", "eval.max_tokens=24", "seed.limit=2",
           "datagen.limit=2", "datagen.solve.n=2", "datagen.solve.max_tokens=24",
           "sft.max_length=1000", "sft.train.max_steps=2", "sft.train.save_steps=1",
           "sft.train.per_device_train_batch_size=2"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    state = out / "round_1" / "state.json"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if state.exists() and '"union"' in state.read_text():
                proc.send_signal(signal.SIGKILL)  # SFT of round 1 is starting
                break
            time.sleep(0.02)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed in SFT"
    assert not (out / "round_1" / "eval" / "summary.json").exists()
    kept = {p: p.stat().st_mtime_ns for p in (out / "round_0" / "eval" / "summary.json",
                                              out / "round_1" / "data" / "generated" /
                                              "manifest.json", out / "seed" / "manifest.json")}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "expert iteration" in done.stdout
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # nothing done was redone
    rows = json.loads((out / "rounds.json").read_text())["rounds"]
    assert [r["round"] for r in rows] == [0, 1] and rows[1]["sft_steps"] == 2
    assert rows[1]["attempts"] == 4 and rows[1]["n_problems"] == 2


@pytest.mark.parametrize("key,changed", [
    ("eval.infra_retries", False), ("datagen.max_inflight", False),
    ("seed.export.formats", False), ("eval.sandbox.workers", False),
    ("eval.limit", True), ("eval.max_tokens", True), ("datagen.solve.n", True),
])
def test_iterate_fingerprint_ignores_nested_non_result_keys(tmp_path, key, changed):
    """Keys that cannot change results are ignored inside the sub-job configs too."""
    settings = it.iterate_settings(cfg_for(tmp_path / "o"))
    assert (key in settings) is changed, sorted(k for k in settings if k.startswith(key[:4]))


def test_a_dpo_round_trains_on_its_own_pairs_and_reports_margins(tmp_path):
    """``train: [dpo]``: pairs from round 1's own samples (seed rows may be chosen), real DPO."""
    out = tmp_path / "it"
    pol = Policy()
    rep = it.run_iterate(cfg_for(out, "train=[dpo]", "dpo.job.train.max_steps=1",
                                 "dpo.job.train.per_device_train_batch_size=2",
                                 "dpo.job.train.save_steps=1", "dpo.job.trl.max_length=1000"),
                         backend_for=pol.backend_for)
    final = out / "round_1" / "dpo" / "final"
    assert (final / "config.json").is_file()
    assert not (out / "round_1" / "checkpoint").exists()  # no SFT in a dpo-only round
    assert pol.models[-1] == str(final)  # the round's model is the DPO one
    pairs = [json.loads(x) for x in open(out / "round_1" / "data" / "generated" /
                                         "preference.jsonl")]
    # every datagen problem: sample 0 verified, sample 1 judged wrong (-12345)
    assert {p["rejected_answer"] for p in pairs} == {"-12345"}
    assert len({p["problem_id"] for p in pairs}) == 3
    assert {"own", "reference"} <= {p["chosen_source"] for p in pairs}  # seed rows chosen too
    r1 = rep.rounds[1]
    assert r1["train"] == ["dpo"] and r1["dpo_steps"] == 1 and r1["pairs"] == len(pairs)
    assert r1["sft_steps"] is None and r1["reward_margin"] is not None
    assert r1["model"] == "round_1/dpo/final" and "dpo_s" in r1["timing"]
    again = it.run_iterate(cfg_for(out, "train=[dpo]", "dpo.job.train.max_steps=1",
                                   "dpo.job.train.per_device_train_batch_size=2",
                                   "dpo.job.train.save_steps=1", "dpo.job.trl.max_length=1000"),
                           backend_for=pol.backend_for)
    assert _no_timing(out / "rounds.json")[1]["pairs"] == again.rounds[1]["pairs"]


def test_train_choices_are_checked():
    with pytest.raises(ValueError, match="each round is one of"):
        it.IterateConfig(train=("ppo",))
    with pytest.raises(ValueError, match="round 1 has dpo but no model samples"):
        it.IterateConfig(train=("dpo", "sft"), rounds=2, self_samples_from=2)
    c = it.IterateConfig(train=("sft", "sft+dpo"), rounds=3)
    assert [c.steps(r) for r in (1, 2, 3)] == [["sft"], ["sft", "dpo"], ["sft", "dpo"]]
