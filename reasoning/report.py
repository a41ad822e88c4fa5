"""Scoring and outputs of an evaluation: summary.json, results.parquet, a chart, a rich table."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from verimath.reasoning import metrics

log = logging.getLogger(__name__)


def _unjudged_reason(a: dict[str, Any]) -> str | None:
    """Why an attempt was not judged: its verdict status, or ``generation_error``."""
    if a["correct"] is not None:
        return None
    if a.get("finish_reason") == "error":
        return "generation_error"
    return str((a.get("verdict") or {}).get("status") or "infrastructure")


def score(records: list[dict[str, Any]], ks: tuple[int, ...]) -> dict[str, Any]:
    """Summary of eval records by :func:`verimath.reasoning.metrics.score` (the one scorer).

    Args:
        records: eval records; each has ``gold`` and ``attempts``, a list of dicts with
            ``answer`` (str or None), ``correct`` (True / False / None = not judged),
            ``finish_reason`` and ``verdict`` (its ``status`` says why a sample was not judged).
        ks: the k values to report.

    Returns:
        :meth:`verimath.reasoning.metrics.Scores.to_dict` plus ``n_problems_without_gold`` (problems
        kept by ``allow_missing_gold``; their samples count as ``bad_gold``, never as
        infrastructure failures).
    """
    correct = [[a["correct"] for a in r["attempts"]] for r in records]
    answers = [[a["answer"] for a in r["attempts"]] for r in records]
    reasons = [[_unjudged_reason(a) for a in r["attempts"]] for r in records]
    out = metrics.score(correct, ks, answers=answers, reasons=reasons).to_dict()
    out["n_problems_without_gold"] = sum(1 for r in records if r.get("gold") is None)
    out["n_unverifiable"] = count_unverifiable(records)
    return out


def count_unverifiable(records: list[dict[str, Any]]) -> int:
    """Attempts whose answer (or proof) ran a verifier out of its limits: judged, not correct.

    ``UNVERIFIABLE`` verdicts are counted as wrong in every score; this count shows how many
    of the judged samples were such (issue 18).
    """
    return sum(1 for r in records for a in r.get("attempts", [])
               if (a.get("verdict") or {}).get("status") == "unverifiable")


def write_parquet(path: Path, records: list[dict[str, Any]]) -> None:
    """One row per attempt: id, sample index, answer, gold, status, correct, tokens, tool calls."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = []
    for r in records:
        for i, a in enumerate(r["attempts"]):
            rows.append({
                "id": r["id"], "sample": i, "gold": r["gold"], "answer": a["answer"],
                "status": a["verdict"]["status"], "reason": a["verdict"]["reason"],
                "correct": a["correct"], "finish_reason": a["finish_reason"],
                "completion_tokens": a["completion_tokens"], "n_tool_calls": len(a["tool_calls"]),
                "text": a["text"],
            })
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(pa.Table.from_pylist(rows), tmp)
    tmp.replace(path)


def plot_summary(path: Path, summary: dict[str, Any], title: str) -> None:
    """Bar chart of pass@k and maj@k (with the accuracy interval as an error bar) to PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, vals = [], []
    for k, v in summary["pass@k"].items():
        labels.append(f"pass@{k}")
        vals.append(v)
    for k, v in summary["maj@k"].items():
        if k != "1":
            labels.append(f"maj@{k}")
            vals.append(v)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(labels) + 2), 3.6))
    bars = ax.bar(labels, [0 if math.isnan(v) else 100 * v for v in vals], color="#4c72b0")
    lo, hi = summary["accuracy_ci95"]
    acc = summary["accuracy"]
    if not math.isnan(acc):
        ax.errorbar([0], [100 * acc], yerr=[[100 * (acc - lo)], [100 * (hi - acc)]], fmt="none",
                    ecolor="black", capsize=5, label="95% CI (accuracy)")
        ax.legend(loc="upper left", fontsize=8)
    for b, v in zip(bars, vals, strict=True):
        ax.annotate("n/a" if math.isnan(v) else f"{100 * v:.1f}", (b.get_x() + b.get_width() / 2,
                    b.get_height()), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("% of problems")
    ax.set_ylim(0, 100)
    loud = nothing_judged_message(summary)
    ax.set_title(title if loud is None else f"{title}\nNOTHING WAS JUDGED", fontsize=9,
                 color="black" if loud is None else "red")
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def nothing_judged_message(summary: dict[str, Any]) -> str | None:
    """The loud line for a summary in which no sample was judged; None when some were."""
    if summary["n_judged"]:
        return None
    return (f"NOTHING WAS JUDGED: 0 of {summary['n_samples']} samples "
            f"({summary['n_bad_gold']} bad gold, {summary['n_infra_failures']} infrastructure "
            "failures); no accuracy, pass@k or maj@k can be reported")


def print_summary(summary: dict[str, Any], title: str) -> None:
    """Print the summary as a rich table on stderr (and a loud line when nothing was judged)."""
    from rich.console import Console
    from rich.table import Table

    def pct(v: float) -> str:
        return "n/a" if math.isnan(v) else f"{100 * v:.1f}%"

    t = Table(title=title)
    t.add_column("metric")
    t.add_column("value", justify="right")
    lo, hi = summary["accuracy_ci95"]
    t.add_row("problems", str(summary["n_problems"]))
    if summary.get("n_problems_without_gold"):
        t.add_row("problems without gold (not scored)", str(summary["n_problems_without_gold"]))
    t.add_row("samples (judged)", f"{summary['n_samples']} ({summary['n_judged']})")
    t.add_row("bad gold (excluded)", str(summary["n_bad_gold"]))
    t.add_row("infrastructure failures (excluded)", str(summary["n_infra_failures"]))
    if summary.get("n_unverifiable"):
        t.add_row("unverifiable answers (judged wrong)", str(summary["n_unverifiable"]))
    loud = nothing_judged_message(summary)
    if loud is None:
        t.add_row("accuracy [95% Wilson CI]", f"{pct(summary['accuracy'])} [{pct(lo)}, {pct(hi)}]")
        for k, v in summary["pass@k"].items():
            t.add_row(f"pass@{k} (problems {summary['problems_per_k'][k]})", pct(v))
        for k, v in summary["maj@k"].items():
            t.add_row(f"maj@{k}", pct(v))
    else:
        t.add_row("accuracy, pass@k, maj@k", "not judged")
    if summary.get("isolation"):
        iso = summary["isolation"]
        t.add_row("sandbox isolation", iso if iso.startswith("bwrap") else f"{iso} (FALLBACK)")
    console = Console(stderr=True)
    console.print(t)
    if loud is not None:
        console.print(f"[bold red]{loud}[/]")


def write_outputs(
    out: Path, records: list[dict[str, Any]], ks: tuple[int, ...], manifest: dict[str, Any]
) -> dict[str, Any]:
    """Score ``records`` and write summary.json, results.parquet, pass_at_k.png; print a table.

    Returns:
        The summary dict (also written to ``out/summary.json``).
    """
    from verimath.store import atomic_write_json

    summary = score(records, ks)
    summary["model"] = manifest.get("model")
    summary["strategy"] = manifest["config"]["rollout"]["strategy"]
    summary["benchmark"] = manifest["config"]["benchmark"]
    summary["isolation"] = manifest.get("isolation")  # the sandbox's, e.g. a fallback (issue 11)
    atomic_write_json(out / "summary.json", summary)
    write_parquet(out / "results.parquet", records)
    title = f"{summary['benchmark']} | {summary['strategy']} | {Path(str(summary['model'])).name}"
    plot_summary(out / "pass_at_k.png", summary, title)
    if (loud := nothing_judged_message(summary)) is not None:
        log.warning("%s: %s", out, loud)
    print_summary(summary, title)
    return summary
