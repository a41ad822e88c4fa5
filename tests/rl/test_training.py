"""One SFT step and one GRPO step on a tiny random model change the weights; a run resumes."""

from __future__ import annotations

import contextlib

import pytest
import torch

from tests.rl.test_rewards import FakeGrader
from tests.verimath.tiny_model import tiny_model_dir
from verimath.config import load_config
from verimath.rl.config import GRPOJobConfig, SFTJobConfig
from verimath.rl.rewards import AnswerReward, VerifierPool


def _snapshot(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def _changed(before: dict[str, torch.Tensor], model) -> int:
    return sum(not torch.equal(before[k], v.detach()) for k, v in model.named_parameters())


def sft_cfg(tmp_path, steps: int) -> SFTJobConfig:
    return load_config(SFTJobConfig, None, [
        f"model={tiny_model_dir()}", f"output_dir={tmp_path / 'sft'}", "max_length=512",
        "data.strategy=tir", "data.arithmetic.n=16", f"train.max_steps={steps}",
        "train.per_device_train_batch_size=4", "train.learning_rate=0.001", "train.save_steps=1",
        "train.save_total_limit=3",
    ])


def test_sft_step_changes_weights_then_resumes_from_checkpoint(tmp_path):
    from verimath.rl.common import TrainReport, run_trainer
    from verimath.rl.sft import build_sft_trainer

    cfg = sft_cfg(tmp_path, steps=1)
    trainer = build_sft_trainer(cfg)
    labels = trainer.train_dataset[0]["labels"]
    assert -100 in labels and any(lab != -100 for lab in labels)
    before = _snapshot(trainer.model)
    report = run_trainer(trainer, cfg, trainer.processing_class, 0.0)
    assert isinstance(report, TrainReport) and report.global_step == 1
    assert _changed(before, trainer.model) > 0
    assert (tmp_path / "sft" / "checkpoint-1").is_dir()
    assert (tmp_path / "sft" / "final" / "config.json").is_file()

    from verimath.jobs import SettingsMismatch
    from verimath.rl.common import training_settings, write_manifest
    from verimath.rl.sft import run_sft

    write_manifest("sft", cfg, cfg.output_dir, settings=training_settings(cfg))
    # a changed setting is refused before anything loads; the stored manifest is kept
    stored = (tmp_path / "sft" / "manifest.json").read_text()
    changed = load_config(SFTJobConfig, None, [
        f"model={tiny_model_dir()}", f"output_dir={tmp_path / 'sft'}", "max_length=512",
        "data.strategy=tir", "data.arithmetic.n=16", "train.max_steps=2",
        "train.per_device_train_batch_size=4", "train.learning_rate=0.01"])
    with pytest.raises(SettingsMismatch, match="train.learning_rate") as e:
        run_sft(changed)
    assert e.value.keys == ["train.learning_rate"]  # max_steps / save_* may differ
    assert (tmp_path / "sft" / "manifest.json").read_text() == stored
    assert not (tmp_path / "sft" / "checkpoint-2").exists()

    resumed = run_sft(sft_cfg(tmp_path, steps=2))  # a longer run continues the same one
    assert resumed.resumed_from is not None and resumed.resumed_from.endswith("checkpoint-1")
    assert resumed.global_step == 2
    assert (tmp_path / "sft" / "manifest.json").is_file()


def grpo_cfg(tmp_path, *extra: str) -> GRPOJobConfig:
    return load_config(GRPOJobConfig, None, [
        f"model={tiny_model_dir()}", f"output_dir={tmp_path / 'grpo'}", "data.arithmetic.n=8",
        "grpo.num_generations=4", "grpo.max_completion_length=12",
        "train.per_device_train_batch_size=8", "train.max_steps=1", "train.learning_rate=0.01",
        "train.save_steps=1", "train.resume=false", *extra,
    ])


def length_reward(completions, completion_ids, **_):
    """Varies across a group (a hash of the tokens), so a random model still gets advantages."""
    return [(sum(ids) % 7) / 7.0 for ids in completion_ids]


def test_grpo_step_changes_weights_with_verifier_rewards(tmp_path):
    from verimath.rl.grpo import build_grpo_trainer

    cfg = grpo_cfg(tmp_path)
    grader = FakeGrader()
    answer = AnswerReward(VerifierPool(grader=grader))
    trainer = build_grpo_trainer(cfg, VerifierPool(), reward_funcs=[answer, length_reward],
                                 weights=[1.0, 1.0], verifier_columns=[True, False])
    before = _snapshot(trainer.model)
    trainer.train()
    assert _changed(before, trainer.model) > 0
    logs = next(h for h in trainer.state.log_history if "reward" in h)
    assert logs["rewards/answer/infra_failure_rate"] == 0.0
    assert logs["rewards/skipped_frac"] == 0.0
    assert len(grader.calls) == 8  # every completion went through the verifier


def test_grpo_infra_failures_are_skipped_not_scored(tmp_path):
    """Every answer verdict is a TIMEOUT: the samples are skipped, so nothing is learned."""
    from verimath.rl.grpo import build_grpo_trainer

    class TimeoutGrader(FakeGrader):
        def grade(self, gold, pred, *, extract=True):
            return super().grade(gold, "<timeout>", extract=extract)

    cfg = grpo_cfg(tmp_path)
    answer = AnswerReward(VerifierPool(grader=TimeoutGrader()))
    trainer = build_grpo_trainer(cfg, VerifierPool(), reward_funcs=[answer, length_reward],
                                 weights=[1.0, 1.0], verifier_columns=[True, False])
    before = _snapshot(trainer.model)
    trainer.train()
    logs = next(h for h in trainer.state.log_history if "reward" in h)
    assert logs["rewards/answer/infra_failure_rate"] == 1.0
    assert logs["rewards/skipped_frac"] == 1.0
    assert _changed(before, trainer.model) == 0  # length_reward did not stand in for a verdict


def test_grpo_stops_when_a_reward_judges_nothing_for_n_steps(tmp_path):
    """A grader that always times out: with max_infra_failure_steps=1 GRPO stops, clearly."""
    from verimath.rl.grpo import build_grpo_trainer
    from verimath.rl.trainer import RewardInfraFailure

    class TimeoutGrader(FakeGrader):
        def grade(self, gold, pred, *, extract=True):
            return super().grade(gold, "<timeout>", extract=extract)

    cfg = grpo_cfg(tmp_path, "grpo.max_infra_failure_steps=1", "train.max_steps=3")
    answer = AnswerReward(VerifierPool(grader=TimeoutGrader()))
    trainer = build_grpo_trainer(cfg, VerifierPool(), reward_funcs=[answer, length_reward],
                                 weights=[1.0, 1.0], verifier_columns=[True, False])
    with pytest.raises(RewardInfraFailure, match="reward 'answer' could not judge any sample"):
        trainer.train()
    assert trainer.state.global_step == 0


def test_grpo_config_validation_names_the_key():
    from verimath.config import ConfigError

    with pytest.raises(ConfigError, match="divisible by grpo.num_generations"):
        load_config(GRPOJobConfig, None, ["grpo.num_generations=3"])
    with pytest.raises(ConfigError, match="rewards.bogus"):
        load_config(GRPOJobConfig, None, ["rewards={bogus: {weight: 1}}"])
    with pytest.raises(ConfigError, match="scale_rewards"):
        load_config(GRPOJobConfig, None, ["grpo.scale_rewards=sometimes"])


@pytest.mark.parametrize("preset", ["arith_cot", "arith_tir", "gsm8k_pot_vllm", "minif2f_proof"])
def test_grpo_presets_load_and_map_to_trl(preset):
    from verimath.rl.grpo import grpo_args, grpo_choices

    cfg = load_config(GRPOJobConfig, f"configs/grpo/{preset}.yaml",
                      ["train.bf16=false"])  # GPU presets use bf16; this CPU cannot
    specs = cfg.reward_specs()
    args = grpo_args(cfg, [s.weight for s in specs])
    choices = grpo_choices(args, [s.name for s in specs])
    assert choices["loss_type"] == cfg.grpo.loss_type
    assert choices["num_generations"] == cfg.grpo.num_generations
    assert choices["epsilon_high"] == cfg.grpo.epsilon_high


@pytest.mark.parametrize("preset", ["arith_tir", "datagen_lora"])
def test_sft_presets_load(preset):
    cfg = load_config(SFTJobConfig, f"configs/sft/{preset}.yaml")
    assert cfg.train.trainer_kwargs()["learning_rate"] > 0
    if cfg.lora.enabled:
        assert cfg.lora.to_peft().r == cfg.lora.r


def test_lora_grpo_step_trains_adapters_only(tmp_path):
    from verimath.rl.grpo import build_grpo_trainer

    cfg = grpo_cfg(tmp_path, "lora.enabled=true", "lora.r=4", "lora.alpha=8")
    trainer = build_grpo_trainer(cfg, VerifierPool(), reward_funcs=[length_reward])
    with contextlib.suppress(AttributeError):
        trainer.model.print_trainable_parameters()
    trainable = {k for k, v in trainer.model.named_parameters() if v.requires_grad}
    assert trainable and all("lora_" in k for k in trainable)
    before = _snapshot(trainer.model)
    trainer.train()
    changed = {k for k, v in trainer.model.named_parameters()
               if not torch.equal(before[k], v.detach())}
    assert changed and changed <= trainable


def test_proof_prompts_and_missing_lean_is_a_clear_error(monkeypatch, tmp_path):
    from verimath.records import Problem
    from verimath.rl.grpo import build_verifiers, prompt_rows

    cfg = load_config(GRPOJobConfig, "configs/grpo/minif2f_proof.yaml", ["train.bf16=false"])
    stmt = "theorem t (x : ℕ) : x + 0 = x := by"
    rows = prompt_rows([Problem("t", "minif2f", "", formal_statement=stmt,
                                header="import Mathlib")], cfg)
    assert stmt in rows[0]["prompt"][-1]["content"] and "lean4" in rows[0]["prompt"][-1]["content"]
    assert rows[0]["formal_statement"] == stmt and rows[0]["header"] == "import Mathlib"
    monkeypatch.delenv("VERIMATH_LEAN_PROJECT", raising=False)
    with contextlib.ExitStack() as stack, pytest.raises(ValueError, match="Lean 4 project"):
        build_verifiers(cfg, stack)


def test_grpo_grader_options_reach_the_grader(tmp_path):
    """The answer reward's math-verify options are the grpo config's, like eval's and datagen's."""
    from verimath.rl.grpo import build_verifiers

    cfg = grpo_cfg(tmp_path, "verifier.grader_float_rounding=2", "verifier.grader_strict=false",
                   "verifier.grader_set_relation=true")
    with contextlib.ExitStack() as stack:
        pool = build_verifiers(cfg, stack)
        gc = pool.grader.config
        assert (gc.float_rounding, gc.strict, gc.allow_set_relation_comp) == (2, False, True)
        # rounding to 2 places makes 0.6 and 0.6049 equal; the default (6) does not
        assert pool.grader.grade("0.6", "0.6049", extract=False).correct
