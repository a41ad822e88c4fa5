"""Job-store append and resume cost: ``verimath.jobs.JobStore`` vs a plain append + fsync.

* baseline: ``open(path, "ab")``, ``write(line)``, ``flush``, ``os.fsync`` per record (what the
  old unlocked store did);
* ours: ``JobStore.add`` (the same line, under ``flock`` with a re-check of lines other
  processes appended, plus the duplicate-key check).

Also times reopening (indexing) a store of ``--n`` records and planning a resume over it
(``plan_tries``: which items to run or retry). Prints records/s of each and the ratio.

Run: ``python benchmarks/store.py [--n 2000] [--size 2000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from verimath.jobs import JobStore, plan_tries


def _baseline(path: Path, lines: list[bytes]) -> float:
    t = time.perf_counter()
    with open(path, "ab") as f:
        for ln in lines:
            f.write(ln)
            f.flush()
            os.fsync(f.fileno())
    return time.perf_counter() - t


def _ours(path: Path, recs: list[dict]) -> float:
    t = time.perf_counter()
    with JobStore(path) as s:
        for r in recs:
            s.add(r["key"], {"payload": r["payload"]})
    return time.perf_counter() - t


def main() -> None:
    """Run the measurement and print one JSON line."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000, help="records")
    ap.add_argument("--size", type=int, default=2000, help="payload bytes per record")
    args = ap.parse_args()
    recs = [{"key": f"k{i}", "payload": "x" * args.size} for i in range(args.n)]
    lines = [(json.dumps(r) + "\n").encode() for r in recs]
    with tempfile.TemporaryDirectory() as d:
        base = _baseline(Path(d) / "base.jsonl", lines)
        ours = _ours(Path(d) / "ours.jsonl", recs)
        t = time.perf_counter()
        with JobStore(Path(d) / "ours.jsonl") as s:
            opened = time.perf_counter() - t
            t = time.perf_counter()
            todo, _ = plan_tries(s, [r["key"] for r in recs] + ["new"], retries=2)
            planned = time.perf_counter() - t
    assert todo == {"new": 0}
    print(json.dumps({
        "n": args.n, "payload_bytes": args.size,
        "baseline_append_per_s": round(args.n / base, 1),
        "jobstore_add_per_s": round(args.n / ours, 1),
        "ratio_ours_vs_baseline": round(base / ours, 3),
        "reopen_s": round(opened, 4), "plan_resume_s": round(planned, 4),
    }))


if __name__ == "__main__":
    main()
