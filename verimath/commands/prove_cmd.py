"""``verimath prove``: whole-proof or best-first-search proving of miniF2F / ProofNet / a JSONL."""

from __future__ import annotations

import argparse

from verimath.commands import MODEL_FLAGS, add_model_arguments

HELP = "prove a formal benchmark (miniF2F, ProofNet, JSONL) in Lean and report pass@k"

# flag -> config key (dotted); values keep their argparse type (never re-read as YAML)
_FLAGS = {**MODEL_FLAGS,
    "benchmark": "benchmark", "split": "split", "limit": "limit", "out": "out", "n": "n",
    "shard": "shard",
    "mode": "mode", "rounds": "rounds", "temperature": "temperature",
    "max_tokens": "max_tokens", "seed": "seed", "env": "env",
    "lean_project": "repl.project_dir", "workers": "repl.workers", "timeout_s": "repl.timeout_s",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``verimath prove``; ``key=value`` overrides may follow (e.g. search.width=16)."""
    p.add_argument("--config", help="YAML preset (configs/prove/*.yaml); flags override it")
    p.add_argument("--benchmark", help="minif2f | proofnet | PATH.jsonl with formal statements")
    p.add_argument("--split", help="keep this split only (valid | test)")
    p.add_argument("--limit", type=int, help="first L problems")
    add_model_arguments(p)
    p.add_argument("--mode", choices=["whole", "bfs"], help="whole proofs or tactic search")
    p.add_argument("--env", choices=["repl", "dojo"], help="tactic env for bfs")
    p.add_argument("--n", type=int, help="attempts per problem")
    p.add_argument("--k", help="comma-separated k for pass@k, e.g. 1,8")
    p.add_argument("--rounds", type=int, help="error-feedback correction rounds (whole)")
    p.add_argument("--temperature", type=float)
    p.add_argument("--max-tokens", dest="max_tokens", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--lean-project", dest="lean_project",
                   help="Lean project with Mathlib (default $VERIMATH_LEAN_PROJECT)")
    p.add_argument("--workers", type=int, help="Lean REPL processes")
    p.add_argument("--timeout-s", dest="timeout_s", type=float, help="seconds per Lean check")
    p.add_argument("--out", help="output folder (an interrupted run resumes there)")
    p.add_argument("--shard", metavar="I/N",
                   help="run shard I (0-based) of N, split by problem id; join the shard "
                        "folders with `verimath merge`")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", help="dotted key=value config overrides")


def run(args: argparse.Namespace) -> int:
    """Build the ProveConfig and run it; 2 on a config error or when Lean is unavailable."""
    import sys

    from verimath.config import ConfigError, config_from_args
    from verimath.prover.evaluation import ProveConfig, main, print_summary
    from verimath.prover.types import LeanUnavailable

    try:
        cfg = config_from_args(ProveConfig, args, _FLAGS, [f"k=[{args.k}]"] if args.k else [])
    except (ConfigError, FileNotFoundError) as e:
        print(f"verimath prove: {e}", file=sys.stderr)
        return 2
    try:
        report = main(cfg, progress=not args.no_progress)
    except LeanUnavailable as e:
        print(f"verimath prove: {e}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as e:
        print(f"verimath prove: {e}", file=sys.stderr)
        return 2
    print_summary(report.summary)
    if report.n_bad_records:
        print(f"{report.n_bad_records} bad input record(s) skipped; see {report.out}/errors.jsonl",
              file=sys.stderr)
    print(f"results in {report.out}/ (summary.json, records.jsonl, manifest.json)",
          file=sys.stderr)
    if cfg.report:
        print(f"report: {report.out / 'report.html'}")
    return 0
