r"""``verimath grade``: grade one answer, or a JSONL file of existing generations.

Single pair::

    verimath grade --gold '\frac{1}{2}' --pred 'so the answer is $0.5$'

prints one JSON verdict ``{"status", "reason", "detail"}`` on stdout.

File::

    verimath grade --file gens.jsonl --gold-field answer --pred-field completion --workers 4

prints one JSON line per input line, in input order::

    {"line": 3, "id": "...", "gold": "18", "pred": "18", "verdict": {"status", "reason", "detail"}}

(``id`` only when the record has one). Field names may be dotted paths into nested objects
(``attempts.0.text``). Values must be strings; numbers are accepted and graded as their decimal
text. A bad record (bad JSON, not an object, missing field, null or other non-string value)
gives a line with ``verdict.status == "error"`` and a reason naming the line and field, plus a
message on stderr, and grading goes on. A summary table (counts per status, accuracy over
judged records with a Wilson 95% interval) and a progress bar go to stderr.

math-verify settings (``--float-rounding``, ``--numeric-precision``, ``--no-strict``,
``--set-relation``, ``--no-raw-extraction``) are :class:`verimath.reasoning.grading.GraderConfig`
fields; ``--manifest PATH`` records them with the versions and the summary.

Exit codes: 0 when grading worked (bad records included), 1 when the grader could not run,
2 on a usage error (missing file, conflicting flags).
"""

from __future__ import annotations

import argparse
from typing import Any

HELP = "grade an answer (--gold/--pred) or a JSONL file of generations with math-verify"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``verimath grade``."""
    p.add_argument("--gold", help="gold answer or whole gold solution (single-pair mode)")
    p.add_argument("--pred", help="predicted answer or whole solution (single-pair mode)")
    p.add_argument("--file", help="JSONL of generations to grade ('-' for stdin)")
    p.add_argument("--gold-field", dest="gold_field", default="answer",
                   help="field holding the gold answer/solution (default: answer)")
    p.add_argument("--pred-field", dest="pred_field", default="pred",
                   help="field holding the prediction (default: pred)")
    p.add_argument("--workers", type=int, default=2, help="grader worker processes (default 2)")
    p.add_argument("--timeout-s", dest="timeout_s", type=float, default=5.0,
                   help="seconds per comparison before TIMEOUT (default 5)")
    p.add_argument("--no-extract", dest="extract", action="store_false",
                   help="predictions are already final answers (do not extract)")
    g = p.add_argument_group("math-verify comparison (recorded in --manifest)")
    g.add_argument("--float-rounding", dest="float_rounding", type=int, default=6,
                   help="decimal places floats are rounded to before comparing (default 6)")
    g.add_argument("--numeric-precision", dest="numeric_precision", type=int, default=15,
                   help="significant digits of numeric comparison (default 15)")
    g.add_argument("--no-strict", dest="strict", action="store_false",
                   help="non-strict: variables matched by position, a set may equal a tuple")
    g.add_argument("--set-relation", dest="allow_set_relation_comp", action="store_true",
                   help="a gold relation may equal a set both ways (1 < x < 2 vs (1, 2))")
    g.add_argument("--no-raw-extraction", dest="raw_extraction", action="store_false",
                   help="grade only our extracted answers, not math-verify's own extraction")
    p.add_argument("--manifest", help="file mode: write a JSON manifest (grader settings, "
                   "versions, summary) to this path")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Dispatch to single-pair or file mode."""
    import sys

    single = args.gold is not None or args.pred is not None
    if single == (args.file is not None):
        print("verimath grade: give either --gold and --pred, or --file", file=sys.stderr)
        return 2
    if single and (args.gold is None or args.pred is None):
        print("verimath grade: --gold and --pred go together", file=sys.stderr)
        return 2
    from verimath.reasoning.grading import GraderConfig, GraderUnavailable

    try:
        cfg = GraderConfig(
            timeout_s=args.timeout_s, workers=max(1, args.workers),
            float_rounding=args.float_rounding, numeric_precision=args.numeric_precision,
            strict=args.strict, allow_set_relation_comp=args.allow_set_relation_comp,
            raw_extraction=args.raw_extraction,
        )
    except ValueError as e:
        print(f"verimath grade: {e}", file=sys.stderr)
        return 2
    try:
        if single:
            return _grade_pair(args.gold, args.pred, cfg, extract=args.extract)
        report = grade_file(
            args.file, args.gold_field, args.pred_field, cfg,
            extract=args.extract, progress=not args.no_progress,
        )
        if args.manifest and report.exit_code == 0:
            write_manifest(args.manifest, cfg, report, args)
        return report.exit_code
    except GraderUnavailable as e:
        print(f"verimath grade: grader unavailable: {e}", file=sys.stderr)
        return 1


def write_manifest(path: str, cfg: Any, report: GradeReport, args: argparse.Namespace) -> None:
    """Write the run manifest of a file grading: grader settings and version, input, summary."""
    from dataclasses import asdict
    from pathlib import Path

    from verimath.manifest import build_manifest
    from verimath.reasoning.grading import GRADER_VERSION
    from verimath.store import atomic_write_json

    manifest = build_manifest(
        "grade", {"grader": asdict(cfg), "file": args.file, "gold_field": args.gold_field,
                  "pred_field": args.pred_field, "extract": args.extract},
        grader_version=GRADER_VERSION, summary=report.summary(),
    )
    atomic_write_json(Path(path), manifest)


def _grade_pair(gold: str, pred: str, cfg: Any, *, extract: bool) -> int:
    import json
    import sys

    from verimath.reasoning.grading import Grader, GraderConfig

    with Grader(GraderConfig(**{**cfg.__dict__, "workers": 1})) as grader:
        verdict = grader.grade(gold, pred, extract=extract)
    sys.stdout.write(json.dumps(verdict.to_dict(), ensure_ascii=False) + "\n")
    return 0


def _field(rec: Any, path: str) -> Any:
    """``rec[path]``, or a dotted path through dicts and lists; raises KeyError if absent."""
    if isinstance(rec, dict) and path in rec:
        return rec[path]
    cur = rec
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            raise KeyError(path)
    return cur


def _as_text(value: Any, where: str, name: str) -> str:
    """A field value as text; raises ValueError naming the line and field otherwise."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    kind = "null" if value is None else type(value).__name__
    raise ValueError(f"{where}: field {name!r}: expected a string, got {kind}")


def parse_record(line: str, lineno: int, gold_field: str, pred_field: str) -> tuple[
    str | None, str | None, Any, str | None
]:
    """``(gold, pred, id, error)`` for one JSONL line; ``error`` names the line and field."""
    import json

    where = f"line {lineno}"
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as e:
        return None, None, None, f"{where}: bad JSON: {e.msg} (column {e.colno})"
    if not isinstance(rec, dict):
        return None, None, None, f"{where}: expected a JSON object, got {type(rec).__name__}"
    rid = rec.get("id")
    values = []
    for name in (gold_field, pred_field):
        try:
            values.append(_as_text(_field(rec, name), where, name))
        except KeyError:
            return None, None, rid, f"{where}: field {name!r}: missing"
        except ValueError as e:
            return None, None, rid, str(e)
    return values[0], values[1], rid, None


class GradeReport:
    """Outcome of :func:`grade_file`: counts per status, bad records, accuracy over judged."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.records = 0
        self.bad_records = 0
        self.exit_code = 0

    def add(self, status: str, *, bad: bool = False) -> None:
        """Count one output line."""
        self.records += 1
        self.bad_records += bad
        if not bad:
            self.counts[status] = self.counts.get(status, 0) + 1

    @property
    def judged(self) -> int:
        """Records with a decision: correct + wrong + no_answer."""
        return sum(self.counts.get(s, 0) for s in ("correct", "wrong", "no_answer"))

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary: records, bad_records, per-status counts, accuracy and ci95."""
        from verimath.reasoning.metrics import rate

        correct = self.counts.get("correct", 0)
        judged = self.judged
        acc = rate([1.0] * correct + [0.0] * (judged - correct))  # the one scorer's rate
        return {
            "records": self.records,
            "bad_records": self.bad_records,
            "counts": dict(sorted(self.counts.items())),
            "judged": judged,
            "accuracy": acc.mean if judged else None,
            "ci95": list(acc.ci95) if judged else None,
        }


def _print_summary(report: GradeReport, err: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    s = report.summary()
    table = Table(title="verimath grade", title_justify="left")
    table.add_column("status")
    table.add_column("records", justify="right")
    for status, n in s["counts"].items():
        table.add_row(status, str(n))
    if report.bad_records:
        table.add_row("bad record", str(report.bad_records))
    table.add_row("total", str(report.records), end_section=True)
    if s["accuracy"] is not None:
        lo, hi = s["ci95"]
        acc = f"{s['accuracy']:.4f} [{lo:.4f}, {hi:.4f}] n={s['judged']}"
        table.add_row("accuracy (judged)", acc)
    else:
        table.add_row("accuracy (judged)", "n/a (nothing judged)")
    Console(file=err, highlight=False).print(table)


def _count_lines(path: str) -> int | None:
    if path == "-":
        return None
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def grade_file(
    path: str,
    gold_field: str,
    pred_field: str,
    cfg: Any,
    *,
    extract: bool = True,
    progress: bool = True,
    out: Any = None,
    err: Any = None,
) -> GradeReport:
    """Grade every line of a JSONL file; write one JSON line per record to ``out`` in order.

    Args:
        path: the JSONL file, or ``"-"`` for stdin.
        gold_field: field (or dotted path) of the gold answer / solution.
        pred_field: field (or dotted path) of the prediction.
        cfg: a :class:`verimath.reasoning.grading.GraderConfig`.
        extract: extract answers from predictions (False: they are final answers already).
        progress: show a progress bar on ``err``.
        out: text stream for the per-record lines (default stdout).
        err: text stream for messages, progress and the summary (default stderr).

    Returns:
        The report; its ``exit_code`` is 0 (grading worked) or 2 (file not found).

    Raises:
        GraderUnavailable: a grader worker could not start.
    """
    import json
    import sys
    from itertools import islice

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from verimath.reasoning.grading import Grader

    out = out or sys.stdout
    err = err or sys.stderr
    report = GradeReport()
    try:
        total = _count_lines(path)
        stream = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
    except OSError as e:
        print(f"verimath grade: {e}", file=err)
        report.exit_code = 2
        return report

    def emit(item: tuple[int, str | None, str | None, Any, str | None], verdict: Any) -> None:
        lineno, _gold, _pred, rid, error = item
        row: dict[str, Any] = {"line": lineno}
        if rid is not None:
            row["id"] = rid
        if error is not None:
            print(f"verimath grade: {error}", file=err)
            row.update(gold=None, pred=None, verdict={"status": "error", "reason": error})
            report.add("error", bad=True)
        else:
            row.update(gold=verdict.detail.get("gold"), pred=verdict.detail.get("pred"),
                       verdict=verdict.to_dict())
            report.add(str(verdict.status))
        try:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        except UnicodeEncodeError:  # lone surrogates from the input, or a non-UTF-8 stdout
            out.write(json.dumps(row) + "\n")

    bar = Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=Console(file=err), transient=True, disable=not progress,
    )
    block = 2 * cfg.workers * cfg.batch_size  # records graded per grade_many call
    with stream, Grader(cfg) as grader, bar:
        task = bar.add_task("grading", total=total)
        records = (
            (lineno, *parse_record(line, lineno, gold_field, pred_field))
            for lineno, line in enumerate(stream, start=1)
            if line.strip()
        )
        while chunk := list(islice(records, block)):
            good = [r for r in chunk if r[4] is None]
            verdicts = iter(grader.grade_many([(r[1], r[2]) for r in good], extract=extract))
            for r in chunk:
                emit(r, next(verdicts) if r[4] is None else None)  # type: ignore[arg-type]
            out.flush()
            bar.advance(task, len(chunk))
    _print_summary(report, err)
    return report
