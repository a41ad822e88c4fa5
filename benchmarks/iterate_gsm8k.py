"""Benchmark (issue 12): expert iteration on GSM8K with the embedded SmolLM2-135M-Instruct.

Runs ``verimath iterate --config configs/iterate/gsm8k_pot.yaml`` in-process: round 0 is the
base model on GSM8K test (first ``--limit`` problems, greedy PoT), round 1 fine-tunes it (LoRA)
on the seed data (verified programs synthesized from GSM8K train reference solutions + verified
augmentation), round 2 on the seed data plus the round-1 model's own verified samples on GSM8K
train. Every round's eval uses the same problems, prompt and max_tokens. Prints the per-round
table (accuracy with its 95% Wilson CI, verified yield, data size, decontamination drops, wall
time split), and the gain of round 1 over the base and of round 2 over round 1 with a
paired-bootstrap 95% CI over the same problems. Targets: round 1 >= +3 points over the base
with a CI that excludes 0, round 2 no worse than round 1.

Baseline in the same run: round 0 (the base model) on the same problems.

The full run takes about 1.5-2 h on 2 CPU cores (measured: see the README).
``--limit 4 --sft-steps 1 --seed-limit 8 --datagen-limit 2`` is a smoke test of the script (its
numbers mean nothing).

Preference arm (issue 21): ``--arms sft,sft+dpo,dpo`` runs round 1 once per arm from the same
base model and the same seed data (``OUT/<arm>/``; round 0 and the seed synthesis are repeated
per arm: both are deterministic, greedy eval and no model), with the base model's own samples
on GSM8K train in every arm (``self_samples_from=1``): ``sft`` trains on seed + own verified
samples; ``dpo`` runs ``verimath dpo`` (RPO loss, LoRA) on pairs of a verified seed/own
trajectory vs the model's judged-wrong sample; ``sft+dpo`` does both in that order. It prints
each arm's table (pairs, reward margin, time split), its gain over the base, and the gain of each
preference arm over the SFT arm, all with paired-bootstrap 95% CIs over the same problems.
Target: a preference arm beats the SFT arm with a CI that excludes 0.

Usage: ``python benchmarks/iterate_gsm8k.py [--out DIR] [--limit 200] [--json OUT] [key=value ...]``
(re-run with the same ``--out`` to resume; ``$VERIMATH_DATA`` must point at the folder with
``gsm8k/`` and ``math500/`` if it is not ``<repo>/../shared/data``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def _fmt_gain(g: dict) -> str:
    if g["gain"] is None:
        return "could not judge (no problem judged in both rounds)"
    lo, hi = g["ci95"]
    excl = "excludes 0" if lo > 0 or hi < 0 else "includes 0"
    return (f"{100 * g['gain']:+.1f} points [95% paired-bootstrap CI {100 * lo:+.1f}, "
            f"{100 * hi:+.1f}] over {g['problems']} problems ({excl}; {g['left_out']} not "
            "judged in both)")


def main() -> int:
    """Run (or resume) the iterate preset, then print the table and the paired gains."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="configs/iterate/gsm8k_pot.yaml")
    ap.add_argument("--out", default="runs/bench_iterate_gsm8k")
    ap.add_argument("--limit", type=int, default=200, help="GSM8K test problems evaluated")
    ap.add_argument("--seed-limit", type=int, help="GSM8K train problems for the seed data")
    ap.add_argument("--datagen-limit", type=int, help="GSM8K train problems sampled per round")
    ap.add_argument("--sft-steps", type=int, help="SFT optimizer steps per round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", help="also write the numbers here")
    ap.add_argument("--arms", help="preference arms of round 1, e.g. sft,sft+dpo,dpo")
    ap.add_argument("--dpo-steps", type=int, help="DPO optimizer steps per round")
    ap.add_argument("overrides", nargs="*", help="dotted key=value iterate config overrides")
    args = ap.parse_args()

    from rich.console import Console

    from verimath.config import load_config
    from verimath.rl.iterate import IterateConfig, run_iterate
    from verimath.rl.iterate_report import paired_gain, rounds_table

    ov = [f"out={args.out}", f"eval.limit={args.limit}", f"rounds={args.rounds}"]
    ov += [f"seed.limit={args.seed_limit}"] if args.seed_limit else []
    ov += [f"datagen.limit={args.datagen_limit}"] if args.datagen_limit else []
    ov += [f"sft.train.max_steps={args.sft_steps}"] if args.sft_steps else []
    ov += [f"dpo.job.train.max_steps={args.dpo_steps}"] if args.dpo_steps else []
    if args.arms:
        return run_arms(args, ov)
    cfg = load_config(IterateConfig, args.config, ov + list(args.overrides))
    report = run_iterate(cfg)
    console = Console()
    if not console.is_terminal:  # a log file: wide enough for the table
        console = Console(width=160)
    console.print(rounds_table(report.rounds))
    out = Path(cfg.out)
    gains = {}
    for a, b in ((0, 1), (1, 2)):
        if b <= cfg.rounds:
            g = paired_gain(out / f"round_{a}" / "eval", out / f"round_{b}" / "eval")
            gains[f"round_{b}_vs_round_{a}"] = g
            console.print(f"round {b} vs round {a}: {_fmt_gain(g)}")
    g1 = gains.get("round_1_vs_round_0")
    if g1 and g1["gain"] is not None:
        met = g1["gain"] >= 0.03 and g1["ci95"][0] > 0
        console.print(f"target round 1 >= +3 points with a CI excluding 0: "
                      f"{'met' if met else 'NOT met'}")
    g2 = gains.get("round_2_vs_round_1")
    if g2 and g2["gain"] is not None:
        console.print(f"target round 2 no worse than round 1: "
                      f"{'met' if g2['gain'] >= 0 else 'NOT met'} (point estimate)")
    console.print(f"rounds.json, rounds.png and every round's folders are in {out}/")
    if args.json:
        Path(args.json).write_text(json.dumps({"rounds": report.rounds, "gains": gains},
                                              indent=2) + "\n")
    return 0


def run_arms(args: argparse.Namespace, ov: list[str]) -> int:
    """Round 1 once per arm (``--arms``); gains vs the base and vs the ``sft`` arm."""
    from rich.console import Console

    from verimath.config import load_config
    from verimath.rl.iterate import IterateConfig, run_iterate
    from verimath.rl.iterate_report import paired_gain, rounds_table

    console = Console() if Console().is_terminal else Console(width=180)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    root = Path(args.out)
    res: dict[str, dict] = {}
    for arm in arms:
        out = root / arm.replace("+", "_")
        cfg = load_config(IterateConfig, args.config, [
            *ov, f"out={out}", "rounds=1", "self_samples_from=1", f"train=[{arm}]",
            *args.overrides])
        rows = run_iterate(cfg).rounds
        console.print(rounds_table(rows))
        g = paired_gain(out / "round_0" / "eval", out / "round_1" / "eval")
        res[arm] = {"out": str(out), "rounds": rows, "vs_base": g}
        console.print(f"{arm}: round 1 vs base: {_fmt_gain(g)}; pairs {rows[1]['pairs']}, "
                      f"reward margin {rows[1]['reward_margin']}, time {rows[1]['timing']}",
                      markup=False)
    if "sft" in res:
        sft_eval = Path(res["sft"]["out"]) / "round_1" / "eval"
        for arm in arms:
            if arm == "sft":
                continue
            g = paired_gain(sft_eval, Path(res[arm]["out"]) / "round_1" / "eval")
            res[arm]["vs_sft"] = g
            met = g["gain"] is not None and g["ci95"][0] > 0
            console.print(f"{arm} vs sft: {_fmt_gain(g)}; target (beats SFT, CI excludes "
                          f"0): {'met' if met else 'NOT met'}", markup=False)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
