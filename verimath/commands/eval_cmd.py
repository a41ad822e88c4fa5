"""``verimath eval``: pass@k / maj@k of a model on a benchmark with CoT, PoT or TIR."""

from __future__ import annotations

import argparse

from verimath.commands import MODEL_FLAGS, add_model_arguments

HELP = "evaluate a model on GSM8K / MATH-500 / a JSONL set (pass@k, maj@k) with CoT, PoT or TIR"

# flag -> config key (dotted); values keep their argparse type (never re-read as YAML)
_FLAGS = {**MODEL_FLAGS,
    "benchmark": "benchmark", "split": "split", "limit": "limit", "out": "out", "n": "n",
    "shard": "shard",
    "temperature": "temperature", "max_tokens": "max_tokens", "seed": "seed",
    "strategy": "rollout.strategy", "allow_missing_gold": "allow_missing_gold",
}


def field_overrides(args: argparse.Namespace) -> list[str]:
    """``question_field=...`` overrides, JSON-quoted so a template stays a string in YAML."""
    import json

    return [f"{k}={json.dumps(getattr(args, k))}"
            for k in ("question_field", "answer_field", "id_field")
            if getattr(args, k, None) is not None]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``verimath eval``; ``key=value`` overrides may follow (e.g. sandbox.timeout_s=3)."""
    p.add_argument("--config", help="YAML preset (configs/eval/*.yaml); flags override it")
    p.add_argument("--benchmark", help="gsm8k | math500 | math | svamp | asdiv | aime24 | amc23 | "
                   "minerva_math | olympiadbench | PATH.jsonl | hub id (layout auto-detected)")
    p.add_argument("--question-field", dest="question_field",
                   help='question field: a dotted path or a template, e.g. "{Body} {Question}"')
    p.add_argument("--answer-field", dest="answer_field", help="gold answer field (dotted path)")
    p.add_argument("--id-field", dest="id_field", help="problem id field (dotted path)")
    p.add_argument("--allow-missing-gold", dest="allow_missing_gold", action="store_true",
                   default=None, help="keep problems whose gold cannot be extracted (not scored)")
    p.add_argument("--split", help="keep this split only (e.g. test)")
    p.add_argument("--limit", type=int, help="first L problems")
    add_model_arguments(p)
    p.add_argument("--strategy", choices=["cot", "pot", "tir"])
    p.add_argument("--n", type=int, help="samples per problem")
    p.add_argument("--k", help="comma-separated k for pass@k / maj@k, e.g. 1,8")
    p.add_argument("--temperature", type=float)
    p.add_argument("--max-tokens", dest="max_tokens", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--out", help="output folder (an interrupted run resumes there)")
    p.add_argument("--shard", metavar="I/N",
                   help="run shard I (0-based) of N, split by problem id; join the shard "
                        "folders with `verimath merge`")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", help="dotted key=value config overrides")


def run(args: argparse.Namespace) -> int:
    """Build the EvalConfig from preset + flags + overrides and run it; 2 on a config error."""
    import sys

    from verimath.config import ConfigError, config_from_args
    from verimath.reasoning.evaluation import EvalConfig, main

    try:
        cfg = config_from_args(EvalConfig, args, _FLAGS, field_overrides(args)
                               + ([f"k=[{args.k}]"] if args.k else []))
    except (ConfigError, FileNotFoundError) as e:
        print(f"verimath eval: {e}", file=sys.stderr)
        return 2
    try:
        report = main(cfg, progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as e:
        print(f"verimath eval: {e}", file=sys.stderr)
        return 2
    if report.n_bad_records:
        print(f"{report.n_bad_records} bad input record(s) skipped; see {report.out}/errors.jsonl",
              file=sys.stderr)
    print(f"results in {report.out}/ (summary.json, records.jsonl, results.parquet, "
          "pass_at_k.png, manifest.json)", file=sys.stderr)
    if cfg.report:
        print(f"report: {report.out / 'report.html'}")
    return 0
