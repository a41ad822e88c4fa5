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
    from verimath.rl.cli import run_job
    from verimath.rl.config import GRPOJobConfig
    from verimath.rl.grpo import run_grpo

    flags = {"model": "model", "out": "output_dir"}
    return run_job("grpo", args, flags, GRPOJobConfig, run_grpo, "reward")
