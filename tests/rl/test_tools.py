"""Tool-integrated GRPO: code runs in the completion's own sandbox session; its output is masked."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from tests.verimath.tiny_model import tiny_model_dir
from verimath.reasoning.tir import find_cut
from verimath.rl.tools import PythonSandboxEnv, TirRollout, generation_stops, prompt_token_ids
from verimath.testing import CountingSandbox

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
    from verimath.reasoning.sandbox import Sandbox, SandboxConfig

    with Sandbox(SandboxConfig(timeout_s=5.0, memory_mb=512, workers=2)) as sb:
        yield sb


class ScriptedGen:
    """Stands in for TRL's generator: after k tool outputs, a sequence continues with SCRIPT[k].

    With ``stops_of`` (a callable giving the stop strings the trainer's generator was given),
    it stops like vLLM with ``include_stop_str_in_output``: at the first stop string, kept.
    ``generated`` counts the characters it produced.
    """

    def __init__(self, tok, script=SCRIPT, stops_of=None) -> None:
        self.tok, self.script, self.stops_of = tok, script, stops_of
        self.finals = 0  # the i-th final answer gets i spaces, so a group's rewards differ
        self.generated = 0

    def __call__(self, ids_list, images, mm, num_generations=1):
        out = []
        stops = self.stops_of() if self.stops_of else ()
        for ids in ids_list:
            k = min(self.tok.decode(ids).count("```output\n"), len(self.script) - 1)
            text = self.script[k]
            hits = [text.find(s) + len(s) for s in stops if s in text]
            if hits:
                text = text[:min(hits)]
            if k == len(self.script) - 1:
                text, self.finals = text + " " * self.finals, self.finals + 1
            self.generated += len(text)
            new = self.tok(text, add_special_tokens=False)["input_ids"]
            out.append(new + [self.tok.eos_token_id] if k == len(self.script) - 1 else new)
        return out, None


class FakeVLLM:
    def __init__(self) -> None:
        self.generation_kwargs = {"seed": 1}


class FakeTrainer:
    """The parts of GRPOTrainer a rollout_func uses, with a vLLM-style generation_kwargs."""

    use_vllm = True

    def __init__(self, tok, max_completion_length=400) -> None:
        self.processing_class = tok
        self.max_completion_length = max_completion_length
        self.vllm_generation = FakeVLLM()
        self._generate_single_turn = ScriptedGen(
            tok, stops_of=lambda: self.vllm_generation.generation_kwargs.get("stop", ()))
        self.args = SimpleNamespace(chat_template_kwargs=None)


PROMPT = [{"role": "user", "content": "What is 6 * 7 + 1?"}]


@pytest.mark.parametrize("text,kept,code,closed", [
    ("no code here", None, None, None),
    ("a\n```python\nprint(1)\n```\nrest", "a\n```python\nprint(1)\n```\n", "print(1)", True),
    ("```python\nprint(2)\n```output\n2", "```python\nprint(2)\n", "print(2)\n", False),
    ("```python\nx = 1", None, None, None),  # still open: not a turn end
])
def test_find_cut_table(text, kept, code, closed):
    cut = find_cut(text)
    if kept is None:
        assert cut is None
    else:
        assert (text[:cut.keep], cut.code, cut.closed) == (kept, code, closed)


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
    assert out["logprobs"] is None and out["prompt_ids"][0] == tok.apply_chat_template(
        PROMPT, add_generation_prompt=True, tokenize=True, return_dict=False)
    # the stop strings reached the generator: nothing past a closed fence was generated ...
    assert trainer._generate_single_turn.generated < sum(map(len, SCRIPT)) - len("ignored tail")
    # ... and the generator's settings are restored afterwards
    assert trainer.vllm_generation.generation_kwargs == {"seed": 1}


def test_tir_rollout_bounds_open_sessions_and_opens_them_lazily(tok, sandbox):
    """12 completions, at most 3 sessions at once; a completion that writes no code opens none."""
    counting = CountingSandbox(sandbox)
    prompts = [PROMPT] * 12
    trainer = FakeTrainer(tok)
    gen = trainer._generate_single_turn
    plain = iter(range(10**6))

    def mixed(ids_list, images, mm, num_generations=1):
        out, lp = gen(ids_list, images, mm, num_generations)
        # every 4th completion answers right away without code (first turn only)
        return [tok("No code: \\boxed{43}", add_special_tokens=False)["input_ids"]
                + [tok.eos_token_id] if "```output" not in tok.decode(ids) and next(plain) % 4 == 0
                else o for ids, o in zip(ids_list, out, strict=True)], lp

    trainer._generate_single_turn = mixed
    roll = TirRollout(counting, max_tool_calls=4, max_sessions=3)
    out = roll(prompts, trainer)
    assert out["tir_answer"] == ["43"] * 12 and out["tir_error"] == [False] * 12
    assert counting.peak == roll.last_slots.peak <= 3 and counting.open == 0
    assert counting.opened == 9  # the 3 completions without code never opened a session


def test_tir_rollout_sandbox_failure_marks_the_completion_unjudgeable(tok):
    from verimath.reasoning.sandbox import ExecResult, ExecStatus

    class BrokenSession:
        closed = False

        def run(self, code):
            return ExecResult(ExecStatus.SANDBOX_ERROR, "", "server died", None, 0.0, 0.0, "none")

        def close(self):
            BrokenSession.closed = True

    class BrokenSandbox:
        def session(self):
            return BrokenSession()

    BrokenSession.closed = False

    out = TirRollout(BrokenSandbox())([PROMPT], FakeTrainer(tok))
    assert out["tir_error"] == [True] and out["tool_statuses"] == [["sandbox_error"]]
    assert BrokenSession.closed
    from tests.rl.test_rewards import FakeGrader
    from verimath.rl.rewards import AnswerReward, VerifierPool

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
    from verimath.config import load_config
    from verimath.rl.config import GRPOJobConfig
    from verimath.rl.grpo import build_grpo_trainer
    from verimath.rl.rewards import VerifierPool

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


def test_generation_stops_reach_transformers_generate(tmp_path, tok, sandbox):
    """TRL's own transformers generation path stops at a stop string set by generation_stops."""
    from verimath.config import load_config
    from verimath.rl.config import GRPOJobConfig
    from verimath.rl.grpo import build_grpo_trainer
    from verimath.rl.rewards import VerifierPool

    cfg = load_config(GRPOJobConfig, None, [
        f"model={tiny_model_dir()}", f"output_dir={tmp_path / 'g'}", "data.strategy=tir",
        "data.arithmetic.n=2", "tools.mode=tir", "grpo.num_generations=2",
        "grpo.max_completion_length=40", "train.per_device_train_batch_size=2",
        "train.max_steps=1", "train.resume=false",
    ])
    trainer = build_grpo_trainer(cfg, VerifierPool(sandbox=sandbox),
                                 reward_funcs=[lambda completions, **_: [0.0] * len(completions)])
    prompt_ids = prompt_token_ids(trainer, [PROMPT])
    # the rollout renders prompts itself, exactly as TRL's own generation path does
    assert prompt_ids == [list(p) for p in trainer._tokenize_prompts([PROMPT])[0]]

    def sample():
        torch.manual_seed(0)
        ids, _ = trainer._generate_single_turn(prompt_ids, None, {}, num_generations=1)
        return list(ids[0])

    free = sample()
    pieces = tok.convert_ids_to_tokens(free)  # what StopStringCriteria matches against
    stop = next(p for p in pieces[6:] if p.isalnum() and len(p) >= 2)
    first = next(k for k in range(1, len(free) + 1) if stop in "".join(pieces[:k]))
    assert first < len(free)
    with generation_stops(trainer, (stop,)):
        stopped = sample()
    assert stopped == free[:first]  # same sample, cut at the token completing the stop string
    assert trainer.generation_config.stop_strings is None
    assert "generate" not in vars(trainer.model)  # the binding is undone


def test_tir_rollout_turn_past_the_token_budget_ends_with_length(tok, sandbox):
    trainer = FakeTrainer(tok, max_completion_length=6)
    out = TirRollout(sandbox)([PROMPT], trainer)
    assert len(out["completion_ids"][0]) == len(out["env_mask"][0]) == 6
    assert out["env_mask"][0] == [1] * 6 and out["tool_statuses"] == [[]]  # no code ran
    assert out["tir_error"] == [False] and out["tir_answer"] == [None]
