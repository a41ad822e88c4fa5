"""Does GRPO on our verifier rewards learn? Held-out reward before vs after, on this CPU.

Starts from the embedded SmolLM2-135M-Instruct and runs GRPO (TRL, our VerifierGRPOTrainer,
the math-verify grader as the answer reward) on generated additions a + b with a, b in
[0, LIMIT]; the (a, b) pairs are split into disjoint train and held-out sets. Held-out reward is
the mean graded-answer reward of sampled completions (temperature 1, the training
distribution) and greedy accuracy, before and after. Prints both, writes the per-step training
reward curve (PNG) and a JSON of every number to --out.

    python benchmarks/grpo_learns.py --steps 20            # ~8-10 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def split_pairs(limit: int, held_out: int, seed: int):
    from verimath.records import Problem

    pairs = [(a, b) for a in range(limit + 1) for b in range(limit + 1)]
    random.Random(seed).shuffle(pairs)
    probs = [Problem(id=f"add-{a}-{b}", source="arithmetic", informal=f"What is {a} + {b}?",
                     answer=str(a + b), meta={"a": a, "b": b, "op": "+"}) for a, b in pairs]
    return probs[held_out:], probs[:held_out]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--limit", type=int, default=12, help="operands in [0, limit]")
    ap.add_argument("--held-out", type=int, default=40)
    ap.add_argument("--prompts-per-step", type=int, default=2)
    ap.add_argument("--generations", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--eval-samples", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1 is fastest on a shared 2-core machine)")
    ap.add_argument("--out", default="runs/bench/grpo_learns")
    args = ap.parse_args()

    import torch

    from verimath.config import load_config
    from verimath.rl.common import load_causal_lm, load_tokenizer, resolve_model_path
    from verimath.rl.config import GRPOJobConfig
    from verimath.rl.grpo import build_grpo_trainer, build_verifiers, prompt_rows
    from verimath.rl.heldout import heldout_reward
    from verimath.rl.rewards import AnswerReward

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train, held = split_pairs(args.limit, args.held_out, args.seed)
    cfg = load_config(GRPOJobConfig, "configs/grpo/arith_cot.yaml", [
        f"output_dir={out / 'run'}", f"train.max_steps={args.steps}",
        f"train.per_device_train_batch_size={args.prompts_per_step * args.generations}",
        f"grpo.num_generations={args.generations}", f"grpo.max_completion_length={args.max_tokens}",
        f"train.learning_rate={args.lr}", f"train.save_steps={args.steps}", "train.resume=false",
        f"train.seed={args.seed}",
    ])
    path = resolve_model_path(cfg.model)
    tok = load_tokenizer(path, padding_side="left")
    model = load_causal_lm(path)
    held_rows = prompt_rows(held, cfg)
    times: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        pool = build_verifiers(cfg, stack)
        reward = AnswerReward(pool, strategy="cot")

        def score(tag: str) -> dict[str, float]:
            t0 = time.monotonic()
            sampled = heldout_reward(model, tok, held_rows, reward, n=args.eval_samples,
                                     temperature=1.0, max_new_tokens=args.max_tokens,
                                     seed=args.seed + 1)
            greedy = heldout_reward(model, tok, held_rows, reward, n=1, temperature=0.0,
                                    max_new_tokens=args.max_tokens)
            times[f"eval_{tag}_s"] = time.monotonic() - t0
            print(f"{tag}: held-out reward (sampled, T=1) {sampled.mean_reward:.3f} over "
                  f"{sampled.judged} samples; greedy accuracy {greedy.mean_reward:.3f} "
                  f"({greedy.judged} problems); e.g. {greedy.samples[0]!r}", flush=True)
            return {"sampled": sampled.mean_reward, "greedy": greedy.mean_reward,
                    "skipped": sampled.skipped + greedy.skipped}

        before = score("before")
        trainer = build_grpo_trainer(cfg, pool, model=model, tokenizer=tok,
                                     reward_funcs=[reward], weights=[1.0],
                                     verifier_columns=[True], problems=train)
        t0 = time.monotonic()
        trainer.train()
        times["train_s"] = time.monotonic() - t0
        after = score("after")
    hist = [h for h in trainer.state.log_history if "reward" in h]
    curve = [h["reward"] for h in hist]
    step_times = [h["step_time"] for h in hist if "step_time" in h]

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(1, len(curve) + 1), curve, marker="o", ms=3, label="train batch reward")
    if len(curve) >= 5:
        k = 5
        smooth = [sum(curve[max(0, i - k + 1):i + 1]) / len(curve[max(0, i - k + 1):i + 1])
                  for i in range(len(curve))]
        ax.plot(range(1, len(curve) + 1), smooth, label="5-step mean")
    ax.axhline(before["sampled"], ls="--", c="gray", label="held-out before")
    ax.axhline(after["sampled"], ls=":", c="green", label="held-out after")
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("answer reward")
    ax.set_title("GRPO on verifier reward: SmolLM2-135M, a + b")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "reward_curve.png", dpi=120)
    result = {"before": before, "after": after, "reward_per_step": curve,
              "step_time_s": step_times, "times_s": times, "args": vars(args),
              "n_train_problems": len(train), "n_heldout_problems": len(held)}
    (out / "result.json").write_text(json.dumps(result, indent=2))
    print(f"held-out reward (sampled): before {before['sampled']:.3f} -> after "
          f"{after['sampled']:.3f} ({after['sampled'] - before['sampled']:+.3f}); greedy "
          f"{before['greedy']:.3f} -> {after['greedy']:.3f}")
    print(f"train time {times['train_s']:.0f}s for {len(curve)} steps; "
          f"curve {out / 'reward_curve.png'}")


if __name__ == "__main__":
    main()
