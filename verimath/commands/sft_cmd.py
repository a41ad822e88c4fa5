"""``verimath sft``: supervised fine-tuning on verified trajectories (tool output masked)."""

from __future__ import annotations

import argparse

HELP = "fine-tune a model on verified trajectories (assistant tokens only, tool output masked)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``verimath sft``; ``key=value`` overrides may follow (e.g. train.max_steps=10)."""
    p.add_argument("--config", help="YAML preset (configs/sft/*.yaml)")
    p.add_argument("--model", help="'default' (embedded SmolLM2-135M-Instruct), a dir or hub id")
    p.add_argument("--data", help="datagen output: JSONL, Parquet or a save_to_disk folder")
    p.add_argument("--out", help="output folder (checkpoints; a rerun resumes there)")
    p.add_argument("overrides", nargs="*", help="dotted key=value config overrides")


def run(args: argparse.Namespace) -> int:
    """Build the SFTJobConfig and train; 2 on a config or data error."""
    from verimath.rl.cli import run_job
    from verimath.rl.config import SFTJobConfig
    from verimath.rl.sft import run_sft

    flags = {"model": "model", "data": "data.path", "out": "output_dir"}
    return run_job("sft", args, flags, SFTJobConfig, run_sft, "loss")
