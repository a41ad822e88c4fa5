"""The TRL internals verimath uses are checked at start-up, naming the TRL version and range."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest
from trl import GRPOTrainer

from tests.verimath.tiny_model import tiny_model_dir
from verimath.rl import trl_compat
from verimath.rl.trl_compat import (
    TESTED_TRL,
    TrlCompatError,
    check_rollout_trainer,
    check_trl,
    trl_version,
)

ROOT = Path(__file__).resolve().parents[2]


def tir_cfg(tmp_path):
    from verimath.config import load_config
    from verimath.rl.config import GRPOJobConfig

    return load_config(GRPOJobConfig, None, [
        f"model={tiny_model_dir()}", f"output_dir={tmp_path / 'g'}", "data.strategy=tir",
        "data.arithmetic.n=2", "tools.mode=tir", "grpo.num_generations=2",
        "grpo.max_completion_length=20", "train.per_device_train_batch_size=2",
        "train.max_steps=1", "train.resume=false",
    ])


def test_installed_trl_is_the_tested_range_pyproject_declares():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    trl_dep = next(d for d in deps if d.replace(" ", "").startswith("trl"))
    assert trl_dep.replace(" ", "") == f"trl{TESTED_TRL}"
    assert trl_compat.in_tested_range(), f"trl {trl_version()} outside {TESTED_TRL}"
    check_trl(rollout=True)  # every hook present in the installed TRL


@pytest.fixture
def no_model_load(monkeypatch):
    """Loading a model or tokenizer fails the test: the check must come before."""
    def refuse(*_a, **_k):
        raise AssertionError("loaded a model before the TRL check")

    monkeypatch.setattr("verimath.rl.grpo.load_causal_lm", refuse)
    monkeypatch.setattr("verimath.rl.grpo.load_tokenizer", refuse)


def test_a_vanished_private_hook_fails_at_startup_naming_the_version(
        monkeypatch, tmp_path, no_model_load):
    from verimath.rl.grpo import build_grpo_trainer
    from verimath.rl.rewards import VerifierPool

    monkeypatch.delattr(GRPOTrainer, "_generate_single_turn")
    with pytest.raises(TrlCompatError) as e:
        build_grpo_trainer(tir_cfg(tmp_path), VerifierPool(),
                           reward_funcs=[lambda completions, **_: [0.0] * len(completions)])
    msg = str(e.value)
    assert f"trl {trl_version()}" in msg and TESTED_TRL in msg
    assert "GRPOTrainer._generate_single_turn is gone" in msg


def test_a_reshaped_private_hook_fails_at_startup(monkeypatch, tmp_path, no_model_load):
    from verimath.rl.grpo import build_grpo_trainer
    from verimath.rl.rewards import VerifierPool

    def reshaped(self, prompts, sampling_params):  # a future TRL with another signature
        raise AssertionError("never called")

    monkeypatch.setattr(GRPOTrainer, "_generate_single_turn", reshaped)
    with pytest.raises(TrlCompatError, match=r"takes \(prompts, sampling_params\), expected"):
        build_grpo_trainer(tir_cfg(tmp_path), VerifierPool(),
                           reward_funcs=[lambda completions, **_: [0.0] * len(completions)])


def test_the_trainer_checks_before_trl_builds_anything(monkeypatch):
    """VerifierGRPOTrainer itself (not only build_grpo_trainer) refuses before GRPOTrainer runs."""
    from verimath.rl.tools import TirRollout
    from verimath.rl.trainer import VerifierGRPOTrainer

    def refuse(*_a, **_k):
        raise AssertionError("GRPOTrainer.__init__ ran")

    monkeypatch.delattr(GRPOTrainer, "_generate_single_turn")
    monkeypatch.setattr(GRPOTrainer, "__init__", refuse)
    with pytest.raises(TrlCompatError, match="_generate_single_turn"):
        VerifierGRPOTrainer(model=None, reward_funcs=[], verifier_columns=[],
                            rollout_func=TirRollout(sandbox=None))


def test_without_the_tir_rollout_the_private_hook_is_not_needed(monkeypatch):
    monkeypatch.delattr(GRPOTrainer, "_generate_single_turn")
    check_trl()  # CoT/PoT GRPO and tools.mode=env use public hooks only
    with pytest.raises(TrlCompatError):
        check_trl(rollout=True)


def test_a_missing_public_argument_is_named(monkeypatch):
    class OldTrainer:
        def __init__(self, model, reward_funcs, args=None, train_dataset=None,
                     processing_class=None, peft_config=None):
            pass

    with pytest.raises(TrlCompatError, match="takes no 'rollout_func' argument.*environment"):
        check_trl(trainer_cls=OldTrainer)


def test_rollout_trainer_attributes_are_checked_per_backend():
    base = dict(processing_class=object(), max_completion_length=8, eos_token_ids=[0],
                args=SimpleNamespace(chat_template_kwargs=None), model=object())
    check_rollout_trainer(SimpleNamespace(**base, use_vllm=False,
                                          generation_config=SimpleNamespace(stop_strings=None)))
    check_rollout_trainer(SimpleNamespace(**base, use_vllm=True, vllm_generation=SimpleNamespace(
        generation_kwargs={})))
    with pytest.raises(TrlCompatError, match="no attribute 'generation_config'"):
        check_rollout_trainer(SimpleNamespace(**base, use_vllm=False))
    with pytest.raises(TrlCompatError, match="vllm_generation has no 'generation_kwargs'"):
        check_rollout_trainer(SimpleNamespace(**base, use_vllm=True,
                                              vllm_generation=SimpleNamespace()))
    with pytest.raises(TrlCompatError, match="args has no 'chat_template_kwargs'"):
        check_rollout_trainer(SimpleNamespace(**{**base, "args": SimpleNamespace()},
                                              use_vllm=True, vllm_generation=SimpleNamespace(
                                                  generation_kwargs={})))
    no_eos = {k: v for k, v in base.items() if k != "eos_token_ids"}
    with pytest.raises(TrlCompatError, match="no attribute 'eos_token_ids'"):
        check_rollout_trainer(SimpleNamespace(**no_eos, use_vllm=False,
                                              generation_config=SimpleNamespace(stop_strings=None)))


def test_an_untested_version_with_the_hooks_present_only_warns(monkeypatch, caplog):
    monkeypatch.setattr(trl_compat, "trl_version", lambda: "1.17.0")
    assert not trl_compat.in_tested_range()
    with caplog.at_level(logging.WARNING, logger="verimath.rl.trl_compat"):
        check_trl(rollout=True)
    assert "trl 1.17.0 is outside the tested range" in caplog.text


def test_every_private_trl_name_the_rl_package_uses_is_checked():
    """A new ``trainer._x`` / ``super()._x`` call in rl/ must be added to the start-up check."""
    import re

    used = set()
    for path in (ROOT / "rl").glob("*.py"):
        used |= set(re.findall(r"(?:\btrainer|super\(\))\.(_[a-z]\w*)", path.read_text()))
    assert used == set(trl_compat.ROLLOUT_HOOKS)
