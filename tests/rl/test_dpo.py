"""``verimath dpo``: one DPO step end to end on a tiny random model, resume after kill -9, and
TRL's fields set in exactly one place."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.verimath.tiny_model import tiny_model_dir
from verimath.config import load_config
from verimath.records import RecordError
from verimath.rl.config import DPOJobConfig, GRPOJobConfig, SFTJobConfig

ROOT = Path(__file__).resolve().parents[2]


def _pairs(path: Path, n: int = 6) -> str:
    """Pairs in the datagen preference format (a verified answer vs a judged-wrong one)."""
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            a, b = i + 1, 2 * i + 3
            f.write(json.dumps({
                "problem_id": f"p{i}",
                "prompt": [{"role": "user", "content": f"What is {a}+{b}?"}],
                "chosen": [{"role": "assistant", "content": f"{a} + {b} = {a + b}. "
                                                            f"The answer is \\boxed{{{a + b}}}."}],
                "rejected": [{"role": "assistant",
                              "content": f"The answer is \\boxed{{{a * b}}}."}],
                "chosen_source": "own", "rejected_reason": "wrong",
            }) + "\n")
    return str(path)


def _cfg(tmp_path: Path, *extra: str) -> DPOJobConfig:
    return load_config(DPOJobConfig, None, [
        f"model={tiny_model_dir()}", f"output_dir={tmp_path / 'dpo'}",
        f"data.path={_pairs(tmp_path / 'pairs.jsonl')}", "data.eval_size=2",
        "train.max_steps=1", "train.per_device_train_batch_size=2", "train.learning_rate=0.01",
        "train.save_steps=1", "trl.max_length=64", *extra])


@pytest.mark.parametrize("lora", [False, True])
def test_one_dpo_step_changes_the_policy_and_reports_heldout(tmp_path, lora):
    from verimath.rl.dpo import build_dpo_trainer, run_dpo

    cfg = _cfg(tmp_path, f"lora.enabled={str(lora).lower()}", "lora.target_modules=[q_proj]")
    trainer = build_dpo_trainer(cfg)
    assert len(trainer.train_dataset) == 4 and len(trainer.eval_dataset) == 2  # by problem
    assert trainer.args.loss_type == ["sigmoid", "sft"] and trainer.args.loss_weights == [1, 1]
    assert (trainer.ref_model is None) is lora  # LoRA: the base with adapters disabled
    del trainer
    report = run_dpo(cfg)
    assert report.global_step == 1
    step = next(h for h in report.log_history if "loss" in h)
    assert "rewards/margins" in step and "rewards/chosen" in step
    assert report.extra["pairs"] == 4 and report.extra["heldout_pairs"] == 2
    before, after = report.extra["heldout_before"], report.extra["heldout_after"]
    assert before["eval_rewards/margins"] == pytest.approx(0.0, abs=1e-6)  # policy == reference
    assert after["eval_logps/chosen"] != before["eval_logps/chosen"]  # one step moved the policy
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir())
    final = AutoModelForCausalLM.from_pretrained(report.final_dir)  # merged when LoRA
    changed = sum(not torch.equal(p, final.state_dict()[k])
                  for k, p in base.state_dict().items())
    assert changed > 0
    manifest = json.loads((tmp_path / "dpo" / "manifest.json").read_text())
    assert manifest["dpo"]["loss_type"] == ["sigmoid", "sft"]
    assert manifest["settings"]["trl.max_length"] == 64


def test_a_bad_pair_is_named_by_file_line_and_field(tmp_path):
    from verimath.rl.dpo import load_pairs

    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps({"prompt": [{"role": "user", "content": "q"}],
                             "chosen": [{"role": "assistant", "content": "a"}]}) + "\n")
    with pytest.raises(RecordError, match=r"bad.jsonl:1.*rejected"):
        load_pairs(p)


def test_trl_fields_have_one_place(tmp_path):
    from trl import DPOConfig, GRPOConfig, SFTConfig

    from verimath.rl.dpo import dpo_args
    from verimath.rl.grpo import grpo_args
    from verimath.rl.sft import build_sft_trainer

    assert dpo_args(_cfg(tmp_path, "trl.beta=0.3")).beta == 0.3  # only trl: sets DPO's beta
    with pytest.raises(ValueError, match="trl.learning_rate: already set"):
        dpo_args(_cfg(tmp_path, "trl.learning_rate=0.1"))
    with pytest.raises(ValueError, match="trl.bta: not a field of trl.DPOConfig"):
        dpo_args(_cfg(tmp_path, "trl.bta=0.3"))
    grpo = load_config(GRPOJobConfig, None, ["trl.beta=0.5", "train.per_device_train_batch_size=8"])
    with pytest.raises(ValueError, match=r"trl.beta: already set .*grpo"):
        grpo_args(grpo, [1.0])  # used to override grpo.beta silently
    ok = load_config(GRPOJobConfig, None, ["trl.top_k=5", "train.per_device_train_batch_size=8"])
    assert grpo_args(ok, [1.0]).top_k == 5
    sft = load_config(SFTJobConfig, None, ["trl.max_length=99", "data.arithmetic.n=4"])
    with pytest.raises(ValueError, match="trl.max_length: already set"):
        build_sft_trainer(sft)
    assert {DPOConfig, GRPOConfig, SFTConfig}


def test_cli_kill_9_inside_a_dpo_run_then_rerun_resumes(tmp_path):
    """The real CLI, killed with SIGKILL after its first checkpoint; the rerun continues it."""
    out = tmp_path / "dpo"
    cmd = [sys.executable, "-m", "verimath", "dpo", "--model", str(tiny_model_dir()),
           "--data", _pairs(tmp_path / "pairs.jsonl", 8), "--out", str(out),
           "train.max_steps=40", "train.save_steps=1", "train.save_total_limit=2",
           "train.per_device_train_batch_size=2", "train.torch_threads=1", "trl.max_length=64"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "checkpoint-2" / "trainer_state.json").exists():
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (out / "final").exists()
    done = subprocess.run([*cmd[:-6], "train.max_steps=4", *cmd[-5:]], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["resumed_from"] is not None and summary["global_step"] == 4
    assert int(summary["resumed_from"].rsplit("-", 1)[1]) >= 2
    assert (out / "final" / "config.json").is_file()
    changed = subprocess.run([*cmd, "trl.beta=0.5"], env=env, capture_output=True, text=True,
                             timeout=300)
    assert changed.returncode != 0 and "trl.beta" in changed.stderr  # settings check on resume
