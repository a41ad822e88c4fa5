"""Does DPO on verified pairs from the model's own samples learn? Held-out greedy accuracy.

The ``grpo_learns`` task: generated additions a + b (a, b in [0, LIMIT]), split into disjoint
train and held-out problems. Starting from the embedded SmolLM2-135M-Instruct:

1. sample ``--samples`` CoT completions per train problem (temperature 1) and grade them with
   the math-verify grader (our AnswerReward; a sample the grader could not judge is left out);
2. pairs: per problem, a judged-correct sample (chosen) vs a judged-wrong one (rejected), at most
   ``--pairs-per-problem``, distinct texts, never two equal answers;
3. ``verimath dpo``'s trainer (LoRA, RPO loss: DPO sigmoid + NLL on chosen, beta 0.1) on them;
4. held-out greedy accuracy before and after, with a paired-bootstrap 95% CI of the gain
   (per-problem differences, :func:`verimath.reasoning.metrics.bootstrap_mean_ci`).

Prints the numbers and writes them to ``--out/result.json``.

    python benchmarks/dpo_learns.py            # a few minutes on 2 shared CPU cores
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from grpo_learns import split_pairs  # noqa: E402


def make_pairs(rows, texts, rewards, n, k, seed):
    """Chosen (reward 1) vs rejected (reward 0) per problem; None rewards never paired."""
    from verimath.reasoning.extract import extract_answer

    rng = random.Random(seed)
    pairs, stats = [], {"problems_with_pairs": 0, "no_correct": 0, "no_wrong": 0}
    for i, row in enumerate(rows):
        got = list(zip(texts[i * n:(i + 1) * n], rewards[i * n:(i + 1) * n], strict=True))
        good = list(dict.fromkeys(t for t, r in got if r == 1.0))
        bad = list(dict.fromkeys(t for t, r in got if r == 0.0))
        if not good or not bad:
            stats["no_correct" if not good else "no_wrong"] += 1
            continue
        rng.shuffle(bad)
        made = 0
        for j, t in enumerate(bad):
            c = good[j % len(good)]
            if extract_answer(c) == extract_answer(t) or made >= k:
                continue
            pairs.append({"prompt": row["prompt"], "problem_id": row["problem_id"],
                          "chosen": [{"role": "assistant", "content": c}],
                          "rejected": [{"role": "assistant", "content": t}]})
            made += 1
        stats["problems_with_pairs"] += bool(made)
    return pairs, stats


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=12, help="operands in [0, limit]")
    ap.add_argument("--held-out", type=int, default=40)
    ap.add_argument("--train-problems", type=int, default=48)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--pairs-per-problem", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="runs/bench/dpo_learns")
    args = ap.parse_args()

    import torch

    from verimath.config import load_config
    from verimath.reasoning.metrics import bootstrap_mean_ci
    from verimath.rl.common import load_causal_lm, load_tokenizer, resolve_model_path
    from verimath.rl.config import DPOJobConfig, GRPOJobConfig
    from verimath.rl.dpo import build_dpo_trainer
    from verimath.rl.grpo import build_verifiers, prompt_rows
    from verimath.rl.heldout import heldout_reward
    from verimath.rl.rewards import AnswerReward

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train, held = split_pairs(args.limit, args.held_out, args.seed)
    train = train[:args.train_problems]
    gcfg = load_config(GRPOJobConfig, "configs/grpo/arith_cot.yaml", [])  # prompts, verifier
    path = resolve_model_path("default")
    tok = load_tokenizer(path, padding_side="left")
    model = load_causal_lm(path)
    train_rows, held_rows = prompt_rows(train, gcfg), prompt_rows(held, gcfg)
    times: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        reward = AnswerReward(build_verifiers(gcfg, stack), strategy="cot")

        def greedy(tag: str):
            t0 = time.monotonic()
            s = heldout_reward(model, tok, held_rows, reward, n=1, temperature=0.0,
                               max_new_tokens=args.max_tokens)
            times[f"eval_{tag}_s"] = time.monotonic() - t0
            scores = reward(s.samples, **{k: [r[k] for r in held_rows]
                                          for k in held_rows[0] if k != "prompt"})
            print(f"{tag}: held-out greedy accuracy {s.mean_reward:.3f} ({s.judged} judged, "
                  f"{s.skipped} not judged)", flush=True)
            return s.mean_reward, scores

        acc0, per0 = greedy("before")
        t0 = time.monotonic()
        sampled = heldout_reward(model, tok, train_rows, reward, n=args.samples,
                                 temperature=1.0, max_new_tokens=args.max_tokens,
                                 seed=args.seed + 1)
        times["sample_s"] = time.monotonic() - t0
        rewards = reward(sampled.samples, **{k: [r[k] for r in train_rows
                                                 for _ in range(args.samples)]
                                             for k in train_rows[0] if k != "prompt"})
        pairs, stats = make_pairs(train_rows, sampled.samples, rewards, args.samples,
                                  args.pairs_per_problem, args.seed)
        print(f"samples: {sampled.judged} judged, mean reward {sampled.mean_reward:.3f}; "
              f"{len(pairs)} pairs from {stats['problems_with_pairs']} problems {stats}",
              flush=True)
        cfg = load_config(DPOJobConfig, "configs/dpo/rpo_lora.yaml", [
            f"output_dir={out / 'run'}", f"train.max_steps={args.steps}",
            f"train.per_device_train_batch_size={args.batch}",
            "train.gradient_accumulation_steps=1", f"train.learning_rate={args.lr}",
            "train.lr_scheduler_type=constant", "train.warmup_steps=0",
            f"train.save_steps={args.steps}", "train.resume=false", "train.report_to=none",
            f"train.seed={args.seed}", "data.eval_size=0", "trl.max_length=256",
            "lora.target_modules=[all-linear]"])
        tok.padding_side = "right"
        trainer = build_dpo_trainer(cfg, model=model, tokenizer=tok, pairs=pairs)
        t0 = time.monotonic()
        trainer.train()
        times["train_s"] = time.monotonic() - t0
        model = trainer.model
        tok.padding_side = "left"
        acc1, per1 = greedy("after")
    diffs = [b - a for a, b in zip(per0, per1, strict=True) if a is not None and b is not None]
    lo, hi = bootstrap_mean_ci(diffs, n_boot=10000, seed=args.seed)
    logs = [h for h in trainer.state.log_history if "rewards/margins" in h]
    result = {"before": acc0, "after": acc1, "gain": sum(diffs) / len(diffs),
              "gain_ci95": [lo, hi], "paired_problems": len(diffs), "pairs": len(pairs),
              "pair_stats": stats, "sample_mean_reward": sampled.mean_reward,
              "margins": [h["rewards/margins"] for h in logs],
              "reward_accuracy": [h["rewards/accuracies"] for h in logs],
              "times_s": {k: round(v, 1) for k, v in times.items()}, "args": vars(args)}
    (out / "result.json").write_text(json.dumps(result, indent=2))
    print(f"held-out greedy accuracy {acc0:.3f} -> {acc1:.3f}, gain {result['gain']:+.3f} "
          f"[paired-bootstrap 95% CI {lo:+.3f}, {hi:+.3f}] over {len(diffs)} problems; "
          f"{len(pairs)} pairs, {args.steps} steps; last reward margin "
          f"{(result['margins'] or [float('nan')])[-1]:+.3f}; times {result['times_s']}")


if __name__ == "__main__":
    main()
