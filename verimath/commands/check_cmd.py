"""``verimath check``: audit existing Lean proofs (errors, sorry, axioms, statement pinning).

Accepts what provers release: a ``proof`` field holding a proof body or a full Lean file
(header + helper lemmas + theorem, as in DeepSeek-Prover-V2, Kimina-Prover and Goedel-Prover
releases). Records without ``formal_statement`` take it (and the header) from
``--statements`` by ``name`` (e.g. ``$VERIMATH_DATA/minif2f/minif2f.jsonl``). Lean runs in a
local REPL pool or on a kimina-lean-server (``--lean-server URL``); ``--text-only`` runs only
the text-level audit (no Lean needed) and says which records still need Lean.
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

HELP = "audit Lean proofs in a JSONL file (fields: name, proof[, formal_statement, header])"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``verimath check``."""
    p.add_argument("file", help="JSONL with name, proof and (or via --statements) "
                                "formal_statement; optional header")
    p.add_argument("--statements", default=None,
                   help="JSONL of name, formal_statement[, header] for records without a "
                        "statement (e.g. ../shared/data/minif2f/minif2f.jsonl)")
    p.add_argument("--text-only", dest="text_only", action="store_true",
                   help="run only the text-level audit (no Lean): rejections per rule, and "
                        "which records need Lean for a verdict")
    p.add_argument("--lean-server", dest="lean_server", default=None, metavar="URL",
                   help="check on a kimina-lean-server at URL (POST /verify) instead of a "
                        "local REPL pool")
    p.add_argument("--api-key", dest="api_key", default=None,
                   help="kimina-lean-server API key (default $KIMINA_API_KEY)")
    p.add_argument("--batch-size", dest="batch_size", type=int, default=8,
                   help="proofs per kimina-lean-server request (default 8)")
    p.add_argument("--lean-project", dest="lean_project",
                   help="Lean project with Mathlib (default $VERIMATH_LEAN_PROJECT)")
    p.add_argument("--workers", type=int, default=2,
                   help="Lean REPL processes, or concurrent server requests (default 2)")
    p.add_argument("--timeout-s", dest="timeout_s", type=float, default=120.0,
                   help="seconds per proof (default 120)")
    p.add_argument("--memory-mb", dest="memory_mb", type=int, default=16384,
                   help="memory cap per REPL process in MiB (default 16384)")
    p.add_argument("--header", default=None,
                   help="header for records without one (default: the miniF2F header)")
    p.add_argument("--summary-json", dest="summary_json", default=None, metavar="PATH",
                   help="also write the per-rule summary as JSON to PATH")
    p.add_argument("--no-cache", action="store_true", help="do not use the verdict cache")


def _statements(path: str | None) -> tuple[dict[str, dict[str, Any]], list[str]]:
    if path is None:
        return {}, []
    from verimath.store import read_jsonl

    out: dict[str, dict[str, Any]] = {}
    bad: list[str] = []
    for line, rec in read_jsonl(path):
        if isinstance(rec, Exception):
            bad.append(str(rec))
        elif not isinstance(rec.get("name"), str) or not isinstance(
                rec.get("formal_statement"), str):
            bad.append(f"{path}:{line}: field 'name' / 'formal_statement': missing or not a "
                       "string")
        else:
            out[rec["name"]] = rec
    return out, bad


def _tasks(path: str, default_header: str, statements: dict[str, dict[str, Any]] | None = None
           ) -> tuple[list[Any], list[tuple[int, str]]]:
    """``([(line, ProofTask)], [(line, why)])``; a record's own fields win over ``statements``."""
    from verimath.prover.types import ProofTask
    from verimath.store import read_jsonl

    tasks: list[Any] = []
    bad: list[tuple[int, str]] = []
    for line, rec in read_jsonl(path):
        if isinstance(rec, Exception):
            bad.append((line, str(rec)))
            continue
        ref = (statements or {}).get(rec.get("name")) if isinstance(rec.get("name"), str) else None
        merged = {**(ref or {}), **{k: v for k, v in rec.items() if v is not None}}
        missing = [f for f in ("name", "formal_statement", "proof")
                   if not isinstance(merged.get(f), str) or not merged[f].strip()]
        if missing:
            where = " (and not in --statements)" if missing[0] == "formal_statement" \
                and statements is not None else ""
            bad.append((line, f"{path}:{line}: field {missing[0]!r}: missing or not a non-empty "
                              f"string{where}"))
            continue
        header = merged.get("header")
        if header is not None and not isinstance(header, str):
            bad.append((line, f"{path}:{line}: field 'header': not a string"))
            continue
        tasks.append((line, ProofTask(merged["formal_statement"], header or default_header,
                                      merged["proof"], merged["name"])))
    return tasks, bad


def text_audit(task: Any) -> dict[str, Any]:
    """The text-level audit of one task as JSON.

    ``status`` is ``rejected`` (with ``findings``; also a full file importing what the header
    lacks), ``needs_lean`` (passed the text checks; Lean must judge the rest) or ``error``
    (the task itself is bad: an unparsable statement).
    """
    from verimath.prover.audit import AuditReport, audit_text_only

    out = audit_text_only(task)
    if isinstance(out, AuditReport):
        if out.infra is not None:
            return {"status": "error", "reason": out.infra, "findings": []}
        return {"status": "rejected", "reason": f"{out.findings[0].check}: {out.findings[0].why}",
                "findings": [{"check": f.check, "why": f.why} for f in out.findings]}
    return {"status": "needs_lean", "findings": [],
            "restatement": "differs (Lean judges the given statement)"
            if out.restated_differs else "same or none"}


def summarize(results: list[dict[str, Any]], n_bad: int, lean: dict[str, Any] | None
              ) -> dict[str, Any]:
    """Counts per status and per rule (first failed check, and every finding's why).

    ``results`` are the per-record dicts printed on stdout (``verdict`` or ``text_audit``).
    """
    status: Counter[str] = Counter()
    first: Counter[str] = Counter()
    why: Counter[tuple[str, str]] = Counter()
    notes: Counter[str] = Counter()
    for r in results:
        v = r.get("verdict") or r["text_audit"]
        status[str(v["status"])] += 1
        findings = v.get("detail", v).get("findings", [])
        if findings:
            first[findings[0]["check"]] += 1
        for f in findings:
            why[(f["check"], f["why"])] += 1
        if (r.get("text_audit") or {}).get("restatement", "").startswith("differs") or \
                (r.get("verdict") or {}).get("detail", {}).get("restatement"):
            notes["restatement differs (judged against the given statement)"] += 1
    return {"records": len(results), "bad_records": n_bad, "lean": lean,
            "status": dict(status), "rejected_by_rule": dict(first),
            "reasons": [{"check": c, "why": w, "count": n} for (c, w), n in why.most_common()],
            "notes": dict(notes)}


def _print_summary(summary: dict[str, Any], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True, soft_wrap=True)
    t = Table(title=title)
    t.add_column("rule")
    t.add_column("rejected", justify="right")
    t.add_column("why (count)")
    for rule, n in sorted(summary["rejected_by_rule"].items(), key=lambda kv: -kv[1]):
        whys = [f"{r['why']} ({r['count']})" for r in summary["reasons"] if r["check"] == rule]
        t.add_row(rule, str(n), "\n".join(whys[:5]) + ("\n..." if len(whys) > 5 else ""))
    console.print(t)
    parts = ", ".join(f"{k} {v}" for k, v in sorted(summary["status"].items()))
    console.print(f"{summary['records']} record(s): {parts}"
                  + (f"; {summary['bad_records']} bad record(s)" if summary["bad_records"]
                     else ""))
    for note, n in summary["notes"].items():
        console.print(f"note: {n} {note}")


def run(args: argparse.Namespace) -> int:
    """Audit every record; one JSON line per record on stdout, the summary on stderr.

    Returns 0 when every record was judged, 1 when some could not be (bad record, Lean
    timeout or error; with ``--text-only``: a bad record), 2 when Lean is unavailable or a
    file cannot be read.
    """
    import json
    import sys
    from pathlib import Path

    from verimath.prover.types import LeanUnavailable

    for f in (args.file, args.statements):
        if f is not None and not Path(f).is_file():
            print(f"verimath check: {f}: no such file", file=sys.stderr)
            return 2
    statements, bad_stmts = _statements(args.statements)
    for msg in bad_stmts:
        print(f"verimath check: skipping bad statement: {msg}", file=sys.stderr)
    checker = None
    if not args.text_only:
        try:
            checker = _build(args)
        except LeanUnavailable as e:
            print(f"verimath check: {e}", file=sys.stderr)
            return 2
    header = args.header if args.header is not None else MINIF2F_HEADER
    tasks, bad = _tasks(args.file, header, statements if args.statements else None)
    for _, msg in bad:
        print(f"verimath check: skipping bad record: {msg}", file=sys.stderr)
    results: list[dict[str, Any]] = []
    if checker is None:
        for line, task in tasks:
            results.append({"line": line, "name": task.name, "text_audit": text_audit(task)})
        lean = None
    else:
        try:
            verdicts = checker.check_many([t for _, t in tasks])
        finally:
            checker.close()
        results = [{"line": line, "name": task.name, "verdict": v.to_dict()}
                   for (line, task), v in zip(tasks, verdicts, strict=True)]
        lean = checker.lean.to_dict()
    for r in results:
        print(json.dumps(r, ensure_ascii=False))
    summary = summarize(results, len(bad), lean)
    title = ("text-level audit (no Lean)" if lean is None else
             f"audit with {lean['toolchain']} / Mathlib {lean['mathlib_rev']}")
    _print_summary(summary, title)
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(summary, indent=2, ensure_ascii=False)
                                           + "\n", encoding="utf-8")
    if lean is None:
        return 0 if not bad else 1
    judged = summary["status"].get("correct", 0) + summary["status"].get("wrong", 0)
    return 0 if judged == len(tasks) and not bad else 1


#: The header of every miniF2F record in ../shared/data (DeepSeek-Prover-V1.5 release).
MINIF2F_HEADER = ("import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 0\n\n"
                  "open BigOperators Real Nat Topology Rat\n\n")


def _build(args: argparse.Namespace) -> Any:
    from verimath.backends.default_model import cache_dir
    from verimath.prover.cache import VerdictCache
    from verimath.prover.checker import LeanChecker

    if args.lean_server:
        from verimath.prover.kimina import KiminaConfig, KiminaRunner

        runner: Any = KiminaRunner(KiminaConfig(
            url=args.lean_server, api_key=args.api_key, timeout_s=args.timeout_s,
            batch_size=args.batch_size, concurrency=args.workers))
        # the server's Lean version is not known, so there is nothing to key a cache on
        return LeanChecker(runner, timeout_s=args.timeout_s)
    from verimath.prover.repl import ReplConfig, ReplPool
    from verimath.prover.toolchain import require_lean

    project = require_lean(args.lean_project)
    pool = ReplPool(ReplConfig(project_dir=str(project.path), workers=args.workers,
                               timeout_s=args.timeout_s, memory_mb=args.memory_mb),
                    project.version)
    pool.preflight()  # REPL setup problems surface now, not inside the first check
    cache = None if args.no_cache else VerdictCache(cache_dir() / "lean_verdicts.jsonl")
    return LeanChecker(pool, cache=cache, timeout_s=args.timeout_s)
