"""``verimath datagen``: turn a pile of math problems into verified training data."""

from __future__ import annotations

import argparse

from verimath.commands import MODEL_FLAGS, add_model_arguments

HELP = ("generate verified PoT/TIR or Lean data: load, dedup, decontaminate, solve / "
        "autoformalize + prove, export (resumable)")

# flag -> config key (dotted); values keep their argparse type (never re-read as YAML)
_FLAGS = {**MODEL_FLAGS,
    "mode": "mode", "split": "split", "limit": "limit", "out": "out",
    "strategy": "rollout.strategy", "n": "solve.n", "push_to_hub": "export.push_to_hub",
    "torch_threads": "torch_threads", "allow_scripted": "export.allow_scripted",
    "shard": "shard",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``verimath datagen``; ``key=value`` overrides may follow (e.g. solve.n=8)."""
    p.add_argument("--config", help="YAML preset (configs/datagen/*.yaml); flags override it")
    p.add_argument("--input", action="append", dest="inputs",
                   help="problem source (repeatable): gsm8k_train | minif2f | PATH | hub id")
    p.add_argument("--mode", choices=["informal", "formal", "both", "reference"],
                   help="reference: no model, programs from annotated reference solutions")
    p.add_argument("--split", help="keep this split only (e.g. valid)")
    p.add_argument("--limit", type=int, help="first L problems of each input")
    add_model_arguments(p)
    p.add_argument("--strategy", choices=["cot", "pot", "tir"])
    p.add_argument("--n", type=int, help="samples per problem")
    p.add_argument("--push-to-hub", dest="push_to_hub", help="also push the dataset to this repo")
    p.add_argument("--torch-threads", dest="torch_threads", type=int,
                   help="CPU threads for torch (1 is often fastest on a small shared CPU)")
    p.add_argument("--out", help="output folder (re-run with the same --out to resume)")
    p.add_argument("--shard", metavar="I/N",
                   help="solve / prove shard I (0-based) of N of the problems; join the shard "
                        "folders with `verimath merge`")
    p.add_argument("--allow-scripted", dest="allow_scripted", action="store_true", default=None,
                   help="export rows verified by the scripted prover double (tests, demos)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("overrides", nargs="*", help="dotted key=value config overrides")


def run(args: argparse.Namespace) -> int:
    """Build the DatagenConfig, run it, print the funnel. 2 on a config error, 130 on Ctrl-C."""
    import json
    import sys

    from verimath.config import ConfigError, config_from_args

    extra = ["inputs=" + json.dumps(args.inputs)] if args.inputs else []
    try:
        from verimath.datagen.config import DatagenConfig

        cfg = config_from_args(DatagenConfig, args, _FLAGS, extra)
    except (ConfigError, FileNotFoundError) as e:
        print(f"verimath datagen: {e}", file=sys.stderr)
        return 2
    from rich.console import Console

    from verimath.datagen.pipeline import main
    from verimath.progress import StageBars
    from verimath.prover.types import LeanUnavailable

    console = Console()  # the funnel is the command's result: stdout
    try:
        with StageBars(enabled=not args.no_progress) as bars:
            report = main(cfg, progress=bars)
    except KeyboardInterrupt:
        print(f"\ninterrupted; everything finished so far is stored in {cfg.out}/stages/. "
              "Re-run the same command to continue.", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, LeanUnavailable) as e:
        print(f"verimath datagen: {e}", file=sys.stderr)
        return 2
    console.print(report.funnel.table(f"datagen funnel ({cfg.mode})"))
    t = report.timing
    if cfg.mode == "reference":
        console.print(
            f"{report.counts.get('verified', 0)} verified records in {t.get('total', 0):.1f} s "
            f"(sandbox {t.get('sandbox_s', 0) + t.get('augment_sandbox_s', 0):.1f} s, TIR "
            f"sessions {t.get('tir_s', 0):.1f} s, grading {t.get('grade_s', 0):.1f} s)")
    else:
        console.print(
            f"{report.counts.get('verified', 0)} verified records in {t.get('total', 0):.1f} s "
            f"(model {t.get('model_generate_s', 0):.1f} s, verification "
            f"{t.get('verify', 0):.1f} s, generation waited {t.get('wait_verify', 0):.1f} s "
            "on verification)")
    files = ", ".join(sorted(report.files.values()))
    console.print(f"results in {report.out}/ ({files}, funnel.json, funnel.png, manifest.json)")
    if cfg.report:
        console.print(f"report: {report.out / 'report.html'}", soft_wrap=True)
    return 0
