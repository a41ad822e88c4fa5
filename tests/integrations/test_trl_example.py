"""examples/trl_grpo.py: a plain TRL GRPOTrainer with verimath.rewards trains 2 steps."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

from tests.verimath.tiny_model import tiny_model_dir

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "trl_grpo.py"


def _example():
    spec = importlib.util.spec_from_file_location("trl_grpo_example", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_trl_grpo_example_trains_two_steps_with_verimath_rewards(tmp_path):
    rows = [{"question": f"Tom has {a} apples and buys {b} more. How many now?",
             "answer": f"{a} + {b} = <<{a}+{b}={a + b}>>{a + b}\n#### {a + b}"}
            for a, b in [(3, 4), (10, 5), (7, 8), (2, 9)]]
    data = tmp_path / "gsm8k.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    trainer = _example().main([
        "--model", str(tiny_model_dir()), "--data", str(data), "--output-dir",
        str(tmp_path / "out"), "--max-steps", "2", "--batch-size", "4",
        "--num-generations", "4", "--max-completion-length", "8", "--learning-rate", "0.01"])
    assert trainer.state.global_step == 2
    logs = [h for h in trainer.state.log_history if "rewards/accuracy_reward_async/mean" in h]
    assert len(logs) == 2
    for h in logs:  # every completion was judged (gibberish: wrong, never NaN)
        assert h["rewards/accuracy_reward_async/mean"] == 0.0
        assert not math.isnan(h["rewards/format_reward/mean"])
        assert h["rewards/accuracy_reward/infra_failure_rate"] == 0.0
