"""`verimath view` at scale: report generation time and file size, first render and filter time.

Synthetic eval runs in the real format (``records.jsonl`` rows built from
:class:`verimath.records.Attempt` / :class:`~verimath.records.Verdict`, ``summary.json`` from the
real scorer, ``manifest.json`` from :func:`verimath.manifest.build_manifest`) of 200 and 5,000
problems x 8 attempts (TIR-like text: prose, a code cell, its output; ~700 characters each).
For each size it prints:

* generation: seconds to read the folder and write ``report.html``, the file size, and the
  ratio against the baseline of merely parsing ``records.jsonl`` (``json.loads`` per line);
* browser (headless ``/usr/bin/chromium`` via Playwright; skipped when absent): milliseconds
  from navigation to the first rendered table, and to apply a filter (select "has wrong") and a
  text search, measured inside the page with ``performance.now()``.

Run: ``.venv/bin/python benchmarks/view.py [--sizes 200,5000] [--n 8]`` (about a minute).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run"]
STATUSES = ["correct"] * 5 + ["wrong"] * 3 + ["no_answer", "timeout"]


def _attempt(rng: random.Random, gold: int) -> dict:
    from verimath.records import Attempt, Span, SpanKind, ToolCall, Verdict, VerdictStatus

    status = VerdictStatus(rng.choice(STATUSES))
    value = gold if status is VerdictStatus.CORRECT else gold + rng.randint(1, 9)
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    prose = (f"Let me work this out. There are {a} boxes with {b} items each, and some are "
             f"removed, so I compute the total first and then subtract. " * 2)
    code = f"boxes = {a}\nper_box = {b}\ntotal = boxes * per_box\nprint(total - {a * b - value})"
    model = f"{prose}\n```python\n{code}\n```\n"
    tool = f"```output\n{value}\n```\n"
    tail = f"The answer is \\boxed{{{value}}}."
    att = Attempt(text=model + tool + tail,
                  spans=(Span(SpanKind.MODEL, model), Span(SpanKind.TOOL, tool),
                         Span(SpanKind.MODEL, tail)),
                  tool_calls=(ToolCall(code, "ok", str(value), 0.01, f"{value}\n"),),
                  answer=None if status is VerdictStatus.NO_ANSWER else str(value),
                  finish_reason="stop", completion_tokens=rng.randint(80, 220))
    v = Verdict(status, "math-verify: not equivalent" if status is VerdictStatus.WRONG else "",
                {"gold": str(gold), "pred": str(value), "grader": "verimath-grader/3"})
    row = att.to_dict()
    row["verdict"] = v.to_dict()
    row["correct"] = status is VerdictStatus.CORRECT if v.status.judged else None
    return row


def write_run(out: Path, n_problems: int, n: int, seed: int = 0) -> None:
    """A synthetic eval folder of ``n_problems`` x ``n`` attempts in the real file formats."""
    from verimath.manifest import build_manifest
    from verimath.reasoning.report import score

    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    system = {"role": "system", "content": "You are a careful math tutor. Use Python."}
    records = []
    with open(out / "records.jsonl", "w", encoding="utf-8") as f:
        for i in range(n_problems):
            gold = rng.randint(10, 9999)
            q = f"Problem {i}: a shop sells {rng.randint(2, 50)} crates ... how many are left?"
            rec = {"id": f"p{i:05d}", "question": q, "gold": str(gold),
                   "prompt": [system, {"role": "user", "content": q}],
                   "attempts": [_attempt(rng, gold) for _ in range(n)], "seconds": 1.0}
            records.append(rec)
            f.write(json.dumps(rec) + "\n")
    summary = score(records, (1, n))
    summary.update(model="synthetic", strategy="tir", benchmark="synthetic", isolation="bwrap")
    (out / "summary.json").write_text(json.dumps(summary))
    cfg = {"benchmark": "synthetic", "n": n, "k": [1, n], "rollout": {"strategy": "tir"}}
    (out / "manifest.json").write_text(json.dumps(build_manifest(
        "eval", cfg, model="synthetic", grader_version="verimath-grader/3", isolation="bwrap")))


def browser_times(paths: list[Path]) -> list[dict]:
    """Per report: ms to first render and to apply a filter and a search, in headless Chromium."""
    from playwright.sync_api import sync_playwright

    out = []
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(profile, executable_path=str(CHROMIUM),
                                                   headless=True, args=ARGS)
        for path in paths:
            page = ctx.new_page()
            t0 = time.perf_counter()
            page.goto(path.resolve().as_uri())
            page.wait_for_selector("body[data-ready='1']", timeout=120_000)
            load_ms = 1000 * (time.perf_counter() - t0)
            m = page.evaluate("""() => {
              const t = () => performance.now();
              const sel = document.getElementById('vm-filter');
              const a = t(); sel.value = 'wrong'; sel.dispatchEvent(new Event('change'));
              const b = t(); const n = document.getElementById('vm-count').textContent;
              const s = document.getElementById('vm-search');
              const c = t(); s.value = 'p0123'; s.dispatchEvent(new Event('input'));
              const d = t();
              return {render_ms: window.vmReport.renderMs, filter_ms: b - a, search_ms: d - c,
                      count: n, nav_ms: performance.getEntriesByType('navigation')[0].duration};
            }""")
            out.append({"load_ms": load_ms, **m})
            page.close()
        ctx.close()
    return out


def main() -> None:
    """Build the runs, time report generation, then time the browser (see module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="200,5000", help="problems per run, comma-separated")
    ap.add_argument("--n", type=int, default=8, help="attempts per problem")
    args = ap.parse_args()
    from verimath.view import build_report

    reports = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            run = Path(tmp) / f"run{size}"
            write_run(run, size, args.n)
            t0 = time.perf_counter()
            for line in (run / "records.jsonl").read_text().splitlines():
                json.loads(line)
            base_s = time.perf_counter() - t0
            rep = build_report([run])
            jsonl_mb = (run / "records.jsonl").stat().st_size / 1e6
            print(f"{size} x {args.n}: records.jsonl {jsonl_mb:.1f} MB; report.html "
                  f"{rep.size_bytes / 1e6:.2f} MB ({'gzip+base64' if rep.compressed else 'json'}) "
                  f"in {rep.seconds:.2f} s = {rep.seconds / base_s:.1f}x the time to json.loads "
                  f"records.jsonl ({base_s:.2f} s)")
            reports.append((str(size), rep.path))
            if rep.compressed:  # the same report with the data as plain JSON, for comparison
                raw = build_report([run], run / "report_json.html", compress=False)
                print(f"{size} x {args.n}: the same as plain JSON {raw.size_bytes / 1e6:.2f} MB "
                      f"in {raw.seconds:.2f} s (synthetic text repeats more than model text, so "
                      "gzip gains more here than on real runs)")
                reports.append((f"{size} (plain JSON)", raw.path))
        if not CHROMIUM.exists():
            print(f"{CHROMIUM} not installed: no browser timings")
            return
        times = browser_times([p for _, p in reports])
        for (size, _), t in zip(reports, times, strict=True):
            print(f"{size} x {args.n} in Chromium: open to first table {t['load_ms']:.0f} ms "
                  f"(script {t['render_ms']:.0f} ms), filter 'has wrong' {t['filter_ms']:.1f} ms "
                  f"({t['count']}), text search {t['search_ms']:.1f} ms")
        if len(times) > 1:
            print(f"ratio {reports[-1][0]} / {reports[0][0]} problems: first render "
                  f"{times[-1]['load_ms'] / times[0]['load_ms']:.1f}x, filter "
                  f"{times[-1]['filter_ms'] / max(times[0]['filter_ms'], 0.01):.1f}x "
                  "(rows are built on demand, 50 per page)")


if __name__ == "__main__":
    main()
