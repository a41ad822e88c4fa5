"""Funnel accounting: how many records entered and left each stage, and why they left.

The funnel is rendered three ways: a ``rich`` table (terminal), a PNG bar chart (matplotlib,
Agg backend, no display needed) and a JSON summary. Counts are deterministic for a given input
and config; timings are kept apart (``timing`` in the JSON) so two runs compare equal on counts.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verimath.store import atomic_write_json


@dataclass
class StageCounts:
    """One stage's counts.

    Attributes:
        stage: stage name.
        unit_in: what entered ("problems", "statements", ...).
        entered: how many ``unit_in`` entered.
        left: how many of them produced at least one output.
        dropped: reason -> how many ``unit_in`` left no output for that reason.
        unit_out: what the stage produces ("problems", "trajectories", ...).
        produced: outputs passed to the next stage.
        rejected_out: reason -> sub-records (e.g. single attempts) dropped inside the stage.
        sub_unit: what ``rejected_out`` counts ("attempts", "statements").
        unjudged: how many ``unit_in`` still have an infrastructure failure after the
            retries (could not judge; their rejection reasons say which failure).
    """

    stage: str
    unit_in: str
    entered: int
    left: int
    dropped: dict[str, int] = field(default_factory=dict)
    unit_out: str = ""
    produced: int = 0
    rejected_out: dict[str, int] = field(default_factory=dict)
    sub_unit: str = ""
    unjudged: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclass
class Funnel:
    """The ordered list of stage counts for one run."""

    stages: list[StageCounts] = field(default_factory=list)

    def add(self, counts: StageCounts) -> None:
        """Append (or replace, when a stage of that name is already there) a stage's counts."""
        self.stages = [s for s in self.stages if s.stage != counts.stage] + [counts]

    def get(self, stage: str) -> StageCounts | None:
        """Counts of ``stage``, or None."""
        return next((s for s in self.stages if s.stage == stage), None)

    def to_dict(self, **extra: Any) -> dict[str, Any]:
        """``{"stages": [...], **extra}``."""
        return {"stages": [s.to_dict() for s in self.stages], **extra}

    def table(self, title: str = "datagen funnel") -> Any:
        """A ``rich.table.Table`` with one row per stage."""
        from rich.table import Table

        t = Table(title=title, show_lines=False)
        t.add_column("stage", style="bold", no_wrap=True)
        t.add_column("in", justify="right")
        t.add_column("out", justify="right")
        t.add_column("dropped (why)", overflow="fold")
        for s in self.stages:
            why = [f"{n} {r}" for r, n in sorted(s.dropped.items(), key=lambda kv: -kv[1])]
            sub = [f"{n} {r}" for r, n in sorted(s.rejected_out.items(), key=lambda kv: -kv[1])]
            if sub:
                why.append(f"[dim]{s.sub_unit or 'sub-records'}: " + ", ".join(sub) + "[/dim]")
            if s.unjudged:
                why.insert(0, f"[bold red]{s.unjudged} could not be judged (infra)[/bold red]")
            out = f"{s.left} {s.unit_in}"
            if s.unit_out and s.unit_out != s.unit_in:
                out += f" -> {s.produced} {s.unit_out}"
            t.add_row(s.stage, f"{s.entered} {s.unit_in}", out, "; ".join(why) or "-")
        return t

    def render_text(self, title: str = "datagen funnel", width: int = 120) -> str:
        """The table as plain text (for logs and tests)."""
        from rich.console import Console

        console = Console(width=width, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
        console.print(self.table(title))
        text = console.export_text()
        console.file.close()
        return text

    def write_png(self, path: str | Path, title: str = "datagen funnel") -> None:
        """A horizontal bar chart: entered vs left per stage, drop reasons annotated.

        Written atomically (temp file + ``os.replace``).
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = [f"{s.stage}\n({s.unit_in})" for s in self.stages]
        entered = [s.entered for s in self.stages]
        left = [s.left for s in self.stages]
        fig, ax = plt.subplots(figsize=(9, 0.8 + 0.75 * max(1, len(names))))
        ys = list(range(len(names)))[::-1]
        ax.barh(ys, entered, color="#d9d9d9", label="entered")
        ax.barh(ys, left, color="#2b8cbe", label="left")
        top = max(entered + [1])
        for y, s in zip(ys, self.stages, strict=True):
            note = f"{s.left}/{s.entered}"
            if s.unit_out and s.unit_out != s.unit_in:
                note += f" -> {s.produced} {s.unit_out}"
            if s.dropped:
                main = max(s.dropped.items(), key=lambda kv: kv[1])
                note += f"  (top drop: {main[1]} {main[0]})"
            ax.text(top * 1.01, y, note, va="center", fontsize=8)
        ax.set_yticks(ys, names, fontsize=8)
        ax.set_xlim(0, top * 1.9)
        ax.set_xlabel("records")
        ax.set_title(title)
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".png")
        os.close(fd)
        try:
            fig.savefig(tmp, dpi=110)
            os.replace(tmp, p)
        finally:
            plt.close(fig)
            Path(tmp).unlink(missing_ok=True)

    def write_json(self, path: str | Path, **extra: Any) -> None:
        """The JSON summary (atomic write)."""
        atomic_write_json(path, self.to_dict(**extra))
