"""``verimath check``: audit existing Lean proofs (errors, sorry, axioms, statement pinning)."""

from __future__ import annotations

import argparse
from typing import Any

HELP = "audit Lean proofs in a JSONL file (fields: name, formal_statement, proof[, header])"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``verimath check``."""
    p.add_argument("file", help="JSONL with name, formal_statement, proof and optional header")
    p.add_argument("--lean-project", dest="lean_project",
                   help="Lean project with Mathlib (default $VERIMATH_LEAN_PROJECT)")
    p.add_argument("--workers", type=int, default=2, help="Lean REPL processes (default 2)")
    p.add_argument("--timeout-s", dest="timeout_s", type=float, default=120.0,
                   help="seconds per proof (default 120)")
    p.add_argument("--memory-mb", dest="memory_mb", type=int, default=16384,
                   help="memory cap per REPL process in MiB (default 16384)")
    p.add_argument("--header", default=None,
                   help="header for records without one (default: the miniF2F header)")
    p.add_argument("--no-cache", action="store_true", help="do not use the verdict cache")


def _tasks(path: str, default_header: str) -> tuple[list[Any], list[tuple[int, str]]]:
    from prover.types import ProofTask
    from verimath.store import read_jsonl

    tasks: list[Any] = []
    bad: list[tuple[int, str]] = []
    for line, rec in read_jsonl(path):
        if isinstance(rec, Exception):
            bad.append((line, str(rec)))
            continue
        missing = [f for f in ("name", "formal_statement", "proof")
                   if not isinstance(rec.get(f), str) or not rec[f].strip()]
        if missing:
            bad.append((line, f"{path}:{line}: field {missing[0]!r}: missing or not a non-empty "
                              "string"))
            continue
        header = rec.get("header")
        if header is not None and not isinstance(header, str):
            bad.append((line, f"{path}:{line}: field 'header': not a string"))
            continue
        tasks.append((line, ProofTask(rec["formal_statement"], header or default_header,
                                      rec["proof"], rec["name"])))
    return tasks, bad


def run(args: argparse.Namespace) -> int:
    """Audit every record; one JSON line per record on stdout, summary on stderr.

    Returns 0 when every record was judged, 1 when some could not be (bad record, Lean
    timeout or error), 2 when Lean is unavailable or the file cannot be read.
    """
    import json
    import sys
    from collections import Counter
    from pathlib import Path

    from prover.types import LeanUnavailable

    if not Path(args.file).is_file():
        print(f"verimath check: {args.file}: no such file", file=sys.stderr)
        return 2
    try:
        checker = _build(args)
    except LeanUnavailable as e:
        print(f"verimath check: {e}", file=sys.stderr)
        return 2
    header = args.header if args.header is not None else MINIF2F_HEADER
    tasks, bad = _tasks(args.file, header)
    for _, msg in bad:
        print(f"verimath check: skipping bad record: {msg}", file=sys.stderr)
    counts: Counter[str] = Counter()
    try:
        verdicts = checker.check_many([t for _, t in tasks])
    finally:
        checker.close()
    for (line, task), v in zip(tasks, verdicts, strict=True):
        counts[str(v.status)] += 1
        print(json.dumps({"line": line, "name": task.name, "verdict": v.to_dict()},
                         ensure_ascii=False))
    lean = checker.lean
    print(f"checked {len(tasks)} proof(s) with {lean.toolchain} / Mathlib {lean.mathlib_rev}: "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
          + (f"; {len(bad)} bad record(s)" if bad else ""), file=sys.stderr)
    judged = counts["correct"] + counts["wrong"]
    return 0 if judged == len(tasks) and not bad else 1


#: The header of every miniF2F record in ../shared/data (DeepSeek-Prover-V1.5 release).
MINIF2F_HEADER = ("import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 0\n\n"
                  "open BigOperators Real Nat Topology Rat\n\n")


def _build(args: argparse.Namespace) -> Any:
    from prover.cache import VerdictCache
    from prover.checker import LeanChecker
    from prover.repl import ReplConfig, ReplPool
    from prover.toolchain import require_lean
    from verimath.backends.default_model import cache_dir

    project = require_lean(args.lean_project)
    pool = ReplPool(ReplConfig(project_dir=str(project.path), workers=args.workers,
                               timeout_s=args.timeout_s, memory_mb=args.memory_mb),
                    project.version)
    cache = None if args.no_cache else VerdictCache(cache_dir() / "lean_verdicts.jsonl")
    return LeanChecker(pool, cache=cache, timeout_s=args.timeout_s)
