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
    import json
    import sys

    from rl.config import SFTJobConfig
    from rl.sft import run_sft
    from verimath.config import ConfigError, load_config
    from verimath.records import RecordError

    flags = {"model": "model", "data": "data.path", "out": "output_dir"}
    overrides = [f"{key}={getattr(args, f)}" for f, key in flags.items()
                 if getattr(args, f) is not None] + list(args.overrides)
    try:
        cfg = load_config(SFTJobConfig, args.config, overrides)
        report = run_sft(cfg)
    except (ConfigError, FileNotFoundError, RecordError, ValueError) as e:
        print(f"verimath sft: {e}", file=sys.stderr)
        return 2
    losses = [h["loss"] for h in report.log_history if "loss" in h]
    print(json.dumps({"final_dir": report.final_dir, "global_step": report.global_step,
                      "resumed_from": report.resumed_from, "first_loss": losses[:1],
                      "last_loss": losses[-1:], "seconds": round(report.seconds, 1)}))
    return 0
