"""Scoring and outputs of an evaluation: summary.json, results.parquet, a chart, a rich table."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from reasoning.metrics import maj_at_k, pass_at_k, wilson_interval

log = logging.getLogger(__name__)


def score(records: list[dict[str, Any]], ks: tuple[int, ...]) -> dict[str, Any]:
    """Aggregate per-problem records into pass@k, maj@k and accuracy.

    Args:
        records: eval records; each has ``attempts``, a list of dicts with ``answer`` (str or
            None) and ``correct`` (True / False / None; None = infrastructure failure).
        ks: the k values to report.

    Returns:
        ``{"n_problems", "n_samples", "n_judged", "n_infra_failures", "accuracy",
        "accuracy_ci95": [lo, hi], "pass@k": {k: value}, "maj@k": {k: value},
        "problems_per_k": {k: problems with >= k judged samples}}``. Infrastructure failures are
        dropped before scoring (never counted as wrong); a problem with fewer than k judged
        samples does not enter pass@k / maj@k for that k. Accuracy is the mean over problems of
        per-problem accuracy; its 95% interval is Wilson's (Wilson 1927) when every problem has
        one judged sample, else a normal interval over problem means.
    """
    per_problem = [[a["correct"] for a in r["attempts"]] for r in records]
    answers = [[a["answer"] for a in r["attempts"]] for r in records]
    judged = [[c for c in cs if c is not None] for cs in per_problem]
    n_samples = sum(len(cs) for cs in per_problem)
    n_judged = sum(len(j) for j in judged)
    accs = [sum(j) / len(j) for j in judged if j]
    acc = sum(accs) / len(accs) if accs else float("nan")
    if all(len(j) == 1 for j in judged if j):
        lo, hi = wilson_interval(int(sum(accs)), len(accs)) if accs else (math.nan, math.nan)
    else:
        sd = math.sqrt(sum((a - acc) ** 2 for a in accs) / max(1, len(accs) - 1))
        half = 1.96 * sd / math.sqrt(len(accs))
        lo, hi = max(0.0, acc - half), min(1.0, acc + half)
    pass_k: dict[str, float] = {}
    maj_k: dict[str, float] = {}
    used: dict[str, int] = {}
    for k in ks:
        vals = [pass_at_k(len(j), sum(j), k) for j in judged if len(j) >= k]
        majs = []
        for cs, ans in zip(per_problem, answers, strict=True):
            if sum(c is not None for c in cs) >= k:
                m = maj_at_k(ans, cs, k)
                if m is not None:
                    majs.append(m)
        used[str(k)] = len(vals)
        pass_k[str(k)] = sum(vals) / len(vals) if vals else float("nan")
        maj_k[str(k)] = sum(majs) / len(majs) if majs else float("nan")
    return {
        "n_problems": len(records), "n_samples": n_samples, "n_judged": n_judged,
        "n_infra_failures": n_samples - n_judged, "accuracy": acc, "accuracy_ci95": [lo, hi],
        "pass@k": pass_k, "maj@k": maj_k, "problems_per_k": used,
    }


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
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def print_summary(summary: dict[str, Any], title: str) -> None:
    """Print the summary as a rich table on stderr."""
    from rich.console import Console
    from rich.table import Table

    def pct(v: float) -> str:
        return "n/a" if math.isnan(v) else f"{100 * v:.1f}%"

    t = Table(title=title)
    t.add_column("metric")
    t.add_column("value", justify="right")
    lo, hi = summary["accuracy_ci95"]
    t.add_row("problems", str(summary["n_problems"]))
    t.add_row("samples (judged)", f"{summary['n_samples']} ({summary['n_judged']})")
    t.add_row("infrastructure failures (excluded)", str(summary["n_infra_failures"]))
    t.add_row("accuracy [95% CI]", f"{pct(summary['accuracy'])} [{pct(lo)}, {pct(hi)}]")
    for k, v in summary["pass@k"].items():
        t.add_row(f"pass@{k}", pct(v))
    for k, v in summary["maj@k"].items():
        t.add_row(f"maj@{k}", pct(v))
    if summary.get("isolation"):
        iso = summary["isolation"]
        t.add_row("sandbox isolation", iso if iso.startswith("bwrap") else f"{iso} (FALLBACK)")
    Console(stderr=True).print(t)


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
    print_summary(summary, title)
    return summary
