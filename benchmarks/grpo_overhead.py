"""Overhead of verification in GRPO: seconds per step with our verifier rewards vs a constant.

Same trainer (VerifierGRPOTrainer), same model (embedded SmolLM2-135M-Instruct), same prompts
and seeds; only the reward function differs:

* ``constant``: ``[0.0] * N`` (no verification at all; the baseline);
* ``cot``: answer reward through the math-verify grader (worker processes);
* ``pot``: program-of-thought answer reward: every completion's program runs in the sandbox
  pool (bubblewrap) and its printed output is graded.

Each variant trains ``--rounds`` runs of ``--steps`` steps from the same initial weights, runs
interleaved (A B C A B C ...) so load from other processes hits them alike; the first step of a
run (warm-up) is left out. Prints the median seconds per step and the ratio to ``constant``,
plus the reward time alone per step (the verifiers' share). Target: ratio < 1.2.

    python benchmarks/grpo_overhead.py            # ~6-10 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class Timed:
    """Wraps a reward function and records its wall time per call."""

    def __init__(self, fn) -> None:
        self.fn, self.seconds = fn, []
        self.__name__ = getattr(fn, "__name__", "reward")

    def __call__(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds.append(time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--generations", type=int, default=8)
    ap.add_argument("--prompts-per-step", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--variants", default="constant,cot,pot")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1 is fastest on a shared 2-core machine)")
    ap.add_argument("--out", default="runs/bench/grpo_overhead")
    args = ap.parse_args()

    import torch

    from verimath.config import load_config
    from verimath.rl.common import load_causal_lm, load_tokenizer, resolve_model_path
    from verimath.rl.config import GRPOJobConfig
    from verimath.rl.grpo import build_grpo_trainer, build_verifiers
    from verimath.rl.rewards import AnswerReward, RewardSpec, build_rewards

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def cfg_for(strategy: str, run: str) -> GRPOJobConfig:
        return load_config(GRPOJobConfig, "configs/grpo/arith_cot.yaml", [
            f"output_dir={out / run}", f"train.max_steps={args.steps}",
            f"train.per_device_train_batch_size={args.prompts_per_step * args.generations}",
            f"grpo.num_generations={args.generations}",
            f"grpo.max_completion_length={args.max_tokens}", f"data.strategy={strategy}",
            "train.save_steps=1000", "train.resume=false", "data.arithmetic.high=99",
            "data.arithmetic.low=10", "verifier.workers=4",
        ])

    path = resolve_model_path("default")
    tok = load_tokenizer(path, padding_side="left")
    base = load_causal_lm(path)
    step_times: dict[str, list[float]] = {v: [] for v in args.variants.split(",")}
    reward_times: dict[str, list[float]] = {v: [] for v in step_times}
    infra_rates: dict[str, list[float]] = {v: [] for v in step_times}
    with contextlib.ExitStack() as stack:
        pool = build_verifiers(cfg_for("pot", "setup"), stack)  # grader + sandbox, started once
        pool.sandbox.run("print(1)")
        for rnd in range(args.rounds):
            for variant in step_times:
                strategy = "pot" if variant == "pot" else "cot"
                cfg = cfg_for(strategy, f"{variant}-{rnd}")
                if variant == "constant":
                    funcs, _, cols = build_rewards([RewardSpec("constant")], pool, strategy)
                else:
                    funcs, cols = [AnswerReward(pool, strategy=strategy)], [True]
                fn = Timed(funcs[0])
                trainer = build_grpo_trainer(cfg, pool, model=copy.deepcopy(base), tokenizer=tok,
                                             reward_funcs=[fn], weights=[1.0],
                                             verifier_columns=cols)
                torch.manual_seed(rnd)
                trainer.train()
                st = [h["step_time"] for h in trainer.state.log_history if "step_time" in h]
                step_times[variant] += st[1:]
                reward_times[variant] += fn.seconds[1:]
                rewards = [h.get("reward") for h in trainer.state.log_history if "reward" in h]
                infra = [h.get("rewards/answer/infra_failure_rate")
                         for h in trainer.state.log_history if "reward" in h]
                infra_rates[variant] += [x for x in infra if x is not None]
                print(f"round {rnd} {variant}: step_time {[round(s, 2) for s in st]} "
                      f"reward {rewards} reward_fn_s {[round(s, 3) for s in fn.seconds]} "
                      f"infra_failure_rate {infra}", flush=True)
    med = {v: statistics.median(s) for v, s in step_times.items() if s}
    rmed = {v: statistics.median(s) for v, s in reward_times.items() if s}
    base_t = med.get("constant")
    result = {"median_step_s": med, "median_reward_fn_s": rmed,
              "ratio_to_constant": {v: t / base_t for v, t in med.items()} if base_t else {},
              "reward_fn_share_of_step": {v: rmed[v] / med[v] for v in med if v in rmed},
              "infra_failure_rates": infra_rates,
              "step_times": step_times, "reward_times": reward_times, "args": vars(args)}
    (out / "result.json").write_text(json.dumps(result, indent=2))
    for v, t in med.items():
        ratio = f"{t / base_t:.3f}x" if base_t else "n/a"
        share = rmed.get(v, 0.0) / t
        print(f"{v:9s} median {t:6.2f} s/step  (reward fn {rmed.get(v, 0):.3f} s = "
              f"{share:.1%} of a step)  vs constant: {ratio}; sandbox/grader failures "
              f"{infra_rates[v] or 'n/a'}")


if __name__ == "__main__":
    main()
