"""``verimath view``: a run folder (or two) as one self-contained HTML report.

:func:`build_report` reads what a job wrote (:mod:`verimath.view.load`), compares two runs when
given two (:mod:`verimath.view.compare`) and writes one HTML file with the data embedded
(:mod:`verimath.view.html`); the page (``assets/report.js``) renders the summary, the problem
table with filters, search and sorting, and each attempt as the model wrote it -- only the rows
on screen are built, so a run of 5,000 problems x 8 samples stays responsive.

The jobs (``eval``, ``prove``, ``datagen``, ``iterate``) call :func:`write_job_report` when they
finish (config ``report: false`` turns it off); ``verimath view RUN`` regenerates it.

This package reads the files every job writes and sits beside the CLI: nothing here is imported
by a job until it finishes, and the only library code it calls is the bootstrap interval of
:mod:`verimath.reasoning.metrics` (comparisons).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

REPORT_NAME = "report.html"
COMPARE_NAME = "compare.html"


@dataclass(frozen=True, slots=True)
class ReportFile:
    """A written report.

    Attributes:
        path: the HTML file.
        kind: ``eval`` | ``prove`` | ``datagen`` | ``iterate`` | ``compare``.
        size_bytes: the file's size.
        seconds: wall time to read the runs and write the file.
        compressed: the data is embedded gzip + base64 (large runs).
    """

    path: Path
    kind: str
    size_bytes: int
    seconds: float
    compressed: bool


def load_run(run: str | Path) -> dict[str, Any]:
    """The report payload of one run folder (kind detected from its files).

    Raises:
        verimath.view.load.RunFolderError: not a run folder, or a file in it is malformed.
    """
    from verimath.view.load import LOADERS, Messages, detect_kind

    path = Path(run)
    kind = detect_kind(path)
    msgs = Messages()
    payload = LOADERS[kind](path, msgs)
    payload["M"] = msgs.rows
    return payload


def _title(payload: dict[str, Any]) -> str:
    if payload["kind"] == "compare":
        a, b = payload["a"]["run"], payload["b"]["run"]
        return f"verimath compare: {a.get('name')} vs {b.get('name')}"
    run = payload["run"]
    what = run.get("benchmark") or run.get("name")
    return f"verimath {payload['kind']}: {what} ({run.get('name')})"


def build_report(runs: list[str | Path], out: str | Path | None = None, *,
                 compress: bool | None = None, n_boot: int = 10000,
                 sub_reports: bool = True) -> ReportFile:
    """Write the HTML report of one run, or the comparison of two.

    Args:
        runs: one run folder, or two eval (or two prove) folders of the same benchmark: A
            (baseline) then B.
        out: the HTML file; None writes ``RUN/report.html`` (one run) or
            ``RUN_B/compare.html`` (two).
        compress: embed the data gzip-compressed; None decides by size.
        n_boot: bootstrap resamples of the comparison's paired interval.
        sub_reports: for an iterate run, also write the ``report.html`` its rounds link to
            (each round's eval and datagen, the seed datagen) where missing.

    Returns:
        The written :class:`ReportFile`.

    Raises:
        verimath.view.load.RunFolderError: a folder is not a run folder (names it and why).
        ValueError: more than two runs, or two runs that cannot be compared.
    """
    from verimath.store import atomic_write_text
    from verimath.view.html import render_page

    t0 = time.perf_counter()
    if not 1 <= len(runs) <= 2:
        raise ValueError(f"view takes one run folder or two to compare, got {len(runs)}")
    paths = [Path(r) for r in runs]
    if len(paths) == 1:
        payload = load_run(paths[0])
        if payload["kind"] == "iterate" and sub_reports:
            _iterate_sub_reports(paths[0], payload)
        target = Path(out) if out else paths[0] / REPORT_NAME
    else:
        from verimath.view.compare import compare

        a, b = load_run(paths[0]), load_run(paths[1])
        payload = compare(a, b, n_boot=n_boot)
        payload["M"] = a["M"]  # a problem shows A's prompt (its indices are into A's table)
        target = Path(out) if out else paths[1] / COMPARE_NAME
    page = render_page(payload, _title(payload), compress=compress)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, page)
    size = target.stat().st_size
    return ReportFile(path=target, kind=payload["kind"], size_bytes=size,
                      seconds=time.perf_counter() - t0, compressed='id="vm-data-gz">' in page)


def _iterate_sub_reports(run: Path, payload: dict[str, Any]) -> None:
    links = payload["links"]
    subs = [links.get("seed")] + [p for r in links["rounds"].values() for p in r.values()]
    for sub in subs:
        if sub and not (run / sub / REPORT_NAME).exists():
            build_report([run / sub], sub_reports=False)


def write_job_report(out: str | Path) -> Path:
    """Write ``OUT/report.html`` at the end of a job (the jobs' ``report: true`` hook).

    Returns:
        The report's path.
    """
    rep = build_report([out])
    log.info("report: %s (%.1f MB, %.1f s)", rep.path, rep.size_bytes / 1e6, rep.seconds)
    return rep.path
