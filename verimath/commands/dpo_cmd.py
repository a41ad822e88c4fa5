"""``verimath dpo``: DPO / iterative RPO on verified-vs-judged-wrong preference pairs."""

from __future__ import annotations

import argparse

HELP = "DPO / RPO on verified vs judged-wrong pairs (datagen preference export) with TRL"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``verimath dpo``; ``key=value`` overrides may follow (e.g. trl.beta=0.2)."""
    p.add_argument("--config", help="YAML preset (configs/dpo/*.yaml)")
    p.add_argument("--model", help="'default' (embedded SmolLM2-135M-Instruct), an SFT final/ "
                   "dir, or a hub id")
    p.add_argument("--data", help="preference.jsonl of verimath datagen")
    p.add_argument("--out", help="output folder (checkpoints; a rerun resumes there)")
    p.add_argument("overrides", nargs="*", help="dotted key=value config overrides")


def run(args: argparse.Namespace) -> int:
    """Build the DPOJobConfig and train; 2 on a config or data error."""
    from verimath.rl.cli import run_job
    from verimath.rl.config import DPOJobConfig
    from verimath.rl.dpo import run_dpo

    flags = {"model": "model", "data": "data.path", "out": "output_dir"}
    return run_job("dpo", args, flags, DPOJobConfig, run_dpo, "loss")
