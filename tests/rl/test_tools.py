"""Tool-integrated GRPO: code runs in the completion's own sandbox session; its output is masked."""

from __future__ import annotations

import pytest
import torch

from rl.tools import PythonSandboxEnv, TirRollout, cut_after_code
from tests.verimath.tiny_model import tiny_model_dir

SCRIPT = [
    "Let me compute.\n```python\nx = 6 * 7\nprint(x)\n```\n```output\nHALLUCINATED\n```\n",
    "One more.\n```python\nprint(x + 1)\n```\nignored tail",
    "The answer is \\boxed{43}.",
]


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir()))


@pytest.fixture(scope="module")
def sandbox():
    from reasoning.sandbox import Sandbox, SandboxConfig

    with Sandbox(SandboxConfig(timeout_s=5.0, memory_mb=512, workers=2)) as sb:
        yield sb


class ScriptedGen:
    """Stands in for TRL's generator: after k tool outputs, a sequence continues with SCRIPT[k]."""

    def __init__(self, tok, script=SCRIPT) -> None:
        self.tok, self.script = tok, script
        self.finals = 0  # the i-th final answer gets i spaces, so a group's rewards differ

    def __call__(self, ids_list, images, mm, num_generations=1):
        out = []
        for ids in ids_list:
            k = min(self.tok.decode(ids).count("```output\n"), len(self.script) - 1)
            text = self.script[k]
            if k == len(self.script) - 1:
                text, self.finals = text + " " * self.finals, self.finals + 1
            new = self.tok(text, add_special_tokens=False)["input_ids"]
            out.append(new + [self.tok.eos_token_id] if k == len(self.script) - 1 else new)
        return out, None


class FakeTrainer:
    def __init__(self, tok, max_completion_length=400) -> None:
        self.processing_class = tok
        self.max_completion_length = max_completion_length
        self._generate_single_turn = ScriptedGen(tok)

    def _tokenize_prompts(self, prompts):
        ids = [self.processing_class.apply_chat_template(p, add_generation_prompt=True,
                                                         tokenize=True, return_dict=False)
               for p in prompts]
        return ids, None, {}


PROMPT = [{"role": "user", "content": "What is 6 * 7 + 1?"}]


def test_cut_after_code_table():
    assert cut_after_code("no code here") is None
    text = "a\n```python\nprint(1)\n```\nrest"
    cut, code, cover = cut_after_code(text)
    assert text[:cut].endswith("```\n") and code == "print(1)" and cover
    text2 = "```python\nprint(2)\n```output\n2"
    cut2, code2, cover2 = cut_after_code(text2)
    assert text2[:cut2].endswith("print(2)\n") and code2.strip() == "print(2)" and not cover2


def test_tir_rollout_runs_cells_in_one_session_and_masks_their_output(tok, sandbox):
    trainer = FakeTrainer(tok)
    out = TirRollout(sandbox, max_tool_calls=4)([PROMPT], trainer)
    ids, mask = out["completion_ids"][0], out["env_mask"][0]
    assert len(ids) == len(mask)
    tool_text = tok.decode([t for t, m in zip(ids, mask, strict=True) if m == 0])
    model_text = tok.decode([t for t, m in zip(ids, mask, strict=True) if m == 1],
                            skip_special_tokens=True)
    # the session kept x between the two cells: 42, then 43
    assert tool_text == "```output\n42\n```\n```output\n43\n```\n"
    assert "x = 6 * 7" in model_text and "print(x + 1)" in model_text
    assert "boxed{43}" in model_text
    assert "HALLUCINATED" not in tok.decode(ids) and "ignored tail" not in tok.decode(ids)
    assert out["tir_answer"] == ["43"] and out["tir_error"] == [False]
    assert out["tool_statuses"] == [["ok", "ok"]]
    assert out["logprobs"] is None and out["prompt_ids"][0] == trainer._tokenize_prompts(
        [PROMPT])[0][0]


def test_tir_rollout_sandbox_failure_marks_the_completion_unjudgeable(tok):
    from reasoning.sandbox import ExecResult, ExecStatus

    class BrokenSession:
        closed = False

        def run(self, code):
            return ExecResult(ExecStatus.SANDBOX_ERROR, "", "server died", None, 0.0, 0.0, "none")

        def close(self):
            BrokenSession.closed = True

    class BrokenSandbox:
        def session(self):
            return BrokenSession()

    out = TirRollout(BrokenSandbox())([PROMPT], FakeTrainer(tok))
    assert out["tir_error"] == [True] and out["tool_statuses"] == [["sandbox_error"]]
    assert BrokenSession.closed
    from rl.rewards import AnswerReward, VerifierPool
    from tests.rl.test_rewards import FakeGrader

    reward = AnswerReward(VerifierPool(grader=FakeGrader()), strategy="tir")
    assert reward(["x"], answer=["43"], tir_answer=out["tir_answer"],
                  tir_error=out["tir_error"]) == [None]


def test_python_env_session_persists_and_resets(sandbox):
    env = PythonSandboxEnv(sandbox)
    assert env.reset() is None
    assert env.python("y = 5") .startswith("(no output")
    assert env.python("print(y * 2)") == "10"
    env.reset()
    assert "NameError" in env.python("print(y)")
    assert env.statuses == ["runtime_error"] and not env.infra_error
    env._close()


def test_grpo_step_with_tir_rollout_masks_tool_tokens_in_the_loss(tmp_path, tok, sandbox):
    """A real TRL GRPO step on the tiny model with our rollout: tool tokens get loss mask 0."""
    from rl.config import GRPOJobConfig
    from rl.grpo import build_grpo_trainer
    from rl.rewards import VerifierPool
    from verimath.config import load_config

    cfg = load_config(GRPOJobConfig, None, [
        f"model={tiny_model_dir()}", f"output_dir={tmp_path / 'g'}", "data.strategy=tir",
        "data.arithmetic.n=4", "tools.mode=tir", "grpo.num_generations=2",
        "grpo.max_completion_length=200", "train.per_device_train_batch_size=2",
        "train.max_steps=1", "train.learning_rate=0.01", "train.resume=false",
        "train.save_steps=10",
    ])

    def varied(completions, completion_ids, **_):
        return [(sum(ids) % 5) / 5.0 for ids in completion_ids]

    trainer = build_grpo_trainer(cfg, VerifierPool(sandbox=sandbox), reward_funcs=[varied])
    gen = ScriptedGen(tok, script=[SCRIPT[0], "Done: \\boxed{42}."])
    trainer._generate_single_turn = gen
    seen = {}
    original = trainer._compute_loss

    def spy(model, inputs):
        seen.update(inputs)
        return original(model, inputs)

    trainer._compute_loss = spy
    before = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
    trainer.train()
    assert any(not torch.equal(before[k], v.detach()) for k, v in trainer.model.named_parameters())
    ids, tmask, cmask = seen["completion_ids"][0], seen["tool_mask"][0], seen["completion_mask"][0]
    masked = tok.decode([t for t, m, c in zip(ids.tolist(), tmask.tolist(), cmask.tolist(),
                                                strict=True) if c and not m])
    assert masked == "```output\n42\n```\n"
