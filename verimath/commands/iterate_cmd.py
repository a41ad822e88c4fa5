"""``verimath iterate``: expert iteration (eval -> verified datagen + seed data -> SFT -> eval)."""

from __future__ import annotations

import argparse

HELP = ("expert iteration (rejection-sampling fine-tuning / ReST-EM): per round, verified "
        "datagen with the current model + synthesized seed data, SFT, eval (resumable)")

_FLAGS = {"model": "model", "out": "out", "rounds": "rounds", "torch_threads": "torch_threads"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``verimath iterate``; ``key=value`` overrides may follow (e.g. eval.limit=20)."""
    p.add_argument("--config", help="YAML preset (configs/iterate/*.yaml); flags override it")
    p.add_argument("--model", help="base model: 'default' (embedded SmolLM2-135M-Instruct), "
                   "a dir or a hub id")
    p.add_argument("--rounds", type=int, help="training rounds after the base eval (round 0)")
    p.add_argument("--torch-threads", dest="torch_threads", type=int,
                   help="CPU threads for torch in every sub-job")
    p.add_argument("--out", help="output folder (re-run with the same --out to resume)")
    p.add_argument("--progress", action="store_true", default=None,
                   help="show the sub-jobs' progress bars")
    p.add_argument("overrides", nargs="*", help="dotted key=value config overrides")


def run(args: argparse.Namespace) -> int:
    """Build the IterateConfig, run the rounds, print the table; 2 on a config/data error."""
    import sys

    from verimath.config import ConfigError, config_from_args

    try:
        from verimath.rl.iterate import IterateConfig

        flags = {**_FLAGS, **({"progress": "progress"} if args.progress else {})}
        cfg = config_from_args(IterateConfig, args, flags)
    except (ConfigError, FileNotFoundError) as e:
        print(f"verimath iterate: {e}", file=sys.stderr)
        return 2
    from rich.console import Console

    from verimath.records import RecordError
    from verimath.rl.iterate import run_iterate
    from verimath.rl.iterate_report import rounds_table

    try:
        report = run_iterate(cfg)
    except KeyboardInterrupt:
        print(f"\ninterrupted; finished phases are stored in {cfg.out}/. Re-run the same "
              "command to continue.", file=sys.stderr)
        return 130
    except (FileNotFoundError, RecordError, ValueError) as e:
        print(f"verimath iterate: {e}", file=sys.stderr)
        return 2
    console = Console()
    if not console.is_terminal:  # a log file: wide enough for the table
        console = Console(width=160)
    console.print(rounds_table(report.rounds))
    console.print(f"results in {report.out}/ (rounds.json, rounds.png, manifest.json, "
                  "seed/, round_<r>/)")
    if cfg.report:
        console.print(f"report: {report.out / 'report.html'}", soft_wrap=True)
    return 0
