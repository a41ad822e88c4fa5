r"""GRPO on GSM8K with a plain TRL ``GRPOTrainer`` and verimath's verifier rewards.

No verimath trainer, config or CLI: the only verimath line is the import of the rewards.

    python examples/trl_grpo.py --model Qwen/Qwen2.5-0.5B-Instruct --max-steps 100
    python examples/trl_grpo.py --model ./my-model --data gsm8k_train.jsonl --max-steps 2

``--data``: a JSONL file with GSM8K's fields (``question``, and ``answer`` ending ``#### N``);
without it, ``openai/gsm8k`` (main, train) is loaded from the Hugging Face hub. The whole gold
solution goes to the reward as TRL's ``solution`` column; the grader takes the gold answer from
its ``#### N`` line.

Rewards: :func:`verimath.rewards.accuracy_reward_async` (math-verify in worker processes; TRL
runs async rewards concurrently, so grading overlaps the other rewards) and
:func:`verimath.rewards.format_reward` (a ``\boxed{}`` answer). A completion the grader could not
judge gets None, which TRL leaves out of the group's baseline.
"""

from __future__ import annotations

import argparse
import json

import torch
from datasets import Dataset, load_dataset
from trl import GRPOConfig, GRPOTrainer

from verimath.rewards import accuracy_reward_async, format_reward

INSTRUCTION = "Solve the problem step by step. Put the final answer in \\boxed{}."


def load_rows(path: str | None, limit: int | None) -> Dataset:
    """GSM8K rows as TRL's conversational ``prompt`` plus the ``solution`` column."""
    if path:
        with open(path, encoding="utf-8") as f:
            raw = Dataset.from_list([json.loads(line) for line in f if line.strip()])
    else:
        raw = load_dataset("openai/gsm8k", "main", split="train")
    if limit:
        raw = raw.select(range(min(limit, len(raw))))
    return raw.map(lambda r: {
        "prompt": [{"role": "user", "content": f"{r['question']}\n\n{INSTRUCTION}"}],
        "solution": r["answer"],
    }, remove_columns=raw.column_names)


def main(argv: list[str] | None = None) -> GRPOTrainer:
    """Parse arguments, train, and return the trainer (tests read its state)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="hub id or local folder")
    ap.add_argument("--data", help="GSM8K-style JSONL (default: openai/gsm8k train)")
    ap.add_argument("--limit", type=int, help="use the first N problems")
    ap.add_argument("--output-dir", default="runs/trl_grpo")
    ap.add_argument("--max-steps", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--num-generations", type=int, default=8)
    ap.add_argument("--max-completion-length", type=int, default=512)
    ap.add_argument("--learning-rate", type=float, default=1e-6)
    args = ap.parse_args(argv)

    config = GRPOConfig(
        output_dir=args.output_dir, max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size, num_generations=args.num_generations,
        max_completion_length=args.max_completion_length, learning_rate=args.learning_rate,
        logging_steps=1, save_strategy="no", report_to="none",
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),  # default: GPU
    )
    trainer = GRPOTrainer(model=args.model, args=config,
                          reward_funcs=[accuracy_reward_async, format_reward],
                          train_dataset=load_rows(args.data, args.limit))
    trainer.train()
    return trainer


if __name__ == "__main__":
    main()
