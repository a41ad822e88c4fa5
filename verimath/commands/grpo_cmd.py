"""``verimath grpo``: GRPO with verifier rewards (answer, proof, format, tool use)."""

from __future__ import annotations

import argparse

HELP = "GRPO on verifier rewards (grader, sandbox, proof checker) with TRL"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``verimath grpo``; ``key=value`` overrides may follow (e.g. grpo.beta=0.04)."""
    p.add_argument("--config", help="YAML preset (configs/grpo/*.yaml)")
    p.add_argument("--model", help="'default' (embedded SmolLM2-135M-Instruct), an SFT final/ "
                   "dir, or a hub id")
    p.add_argument("--out", help="output folder (checkpoints; a rerun resumes there)")
    p.add_argument("overrides", nargs="*", help="dotted key=value config overrides")


def run(args: argparse.Namespace) -> int:
    """Build the GRPOJobConfig and train; 2 on a config or data error."""
    import json
    import sys

    from rl.config import GRPOJobConfig
    from rl.grpo import run_grpo
    from verimath.config import ConfigError, load_config
    from verimath.records import RecordError

    flags = {"model": "model", "out": "output_dir"}
    overrides = [f"{key}={getattr(args, f)}" for f, key in flags.items()
                 if getattr(args, f) is not None] + list(args.overrides)
    try:
        cfg = load_config(GRPOJobConfig, args.config, overrides)
        report = run_grpo(cfg)
    except (ConfigError, FileNotFoundError, RecordError, ValueError) as e:
        print(f"verimath grpo: {e}", file=sys.stderr)
        return 2
    rewards = [h["reward"] for h in report.log_history if "reward" in h]
    print(json.dumps({"final_dir": report.final_dir, "global_step": report.global_step,
                      "resumed_from": report.resumed_from, "reward_per_step": rewards,
                      "seconds": round(report.seconds, 1)}))
    return 0
