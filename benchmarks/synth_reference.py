"""Benchmark: reference-guided synthesis on GSM8K train, no model (``gsm8k_reference`` preset).

Runs ``verimath datagen --config configs/datagen/gsm8k_reference.yaml --limit N`` in-process into
a fresh folder and prints the funnel, the share of problems with a verified program, the records
per method, where the wall time went, and the load average (the machine is shared). The target
(issue 12) is >= 85% verified and under 60 s for 200 problems on 2 cores.

Baseline in the same run: the verified PoT programs executed again one at a time with
``Sandbox.run`` against the stage's way, one ``Sandbox.run_many`` batch; the ratio says what the
batched execution buys.

Usage: ``python benchmarks/synth_reference.py [--limit 200] [--json OUT]``
(``$VERIMATH_DATA`` must point at the folder with ``gsm8k/``, ``math500/`` if it is not
``<repo>/../shared/data``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def main() -> int:
    """Run the preset, then the serial-vs-batched execution baseline; print everything."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--json", help="also write the numbers here")
    args = ap.parse_args()

    from rich.console import Console

    from datagen.config import DatagenConfig
    from datagen.pipeline import main as datagen
    from reasoning.sandbox import Sandbox
    from verimath.config import load_config

    console = Console()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="synth-bench-") as tmp:
        cfg = load_config(DatagenConfig, REPO / "configs/datagen/gsm8k_reference.yaml",
                          [f"limit={args.limit}", f"out={tmp}/run"])
        t = time.perf_counter()
        report = datagen(cfg)
        wall = time.perf_counter() - t
        load_after = os.getloadavg()
        rows = [json.loads(x) for x in Path(tmp, "run", "data.jsonl").read_text().splitlines()]
    console.print(report.funnel.table("gsm8k_reference funnel"))
    synth = report.funnel.get("synthesize")
    loaded = report.funnel.get("load")
    assert synth is not None and loaded is not None
    share = synth.left / max(1, loaded.left)
    methods = Counter((r["provenance"]["source_method"], r["kind"]) for r in rows)
    programs = [r["provenance"]["tool_calls"][0]["code"] for r in rows
                if r["kind"] == "pot" and r["provenance"]["source_method"] == "reference"]
    with Sandbox(cfg.sandbox) as sb:
        sb.run_many(programs[:8])  # warm
        t = time.perf_counter()
        for code in programs:
            sb.run(code)
        serial = time.perf_counter() - t
        t = time.perf_counter()
        sb.run_many(programs)
        batched = time.perf_counter() - t
    out = {
        "limit": args.limit, "cpus": os.cpu_count(), "wall_s": round(wall, 2),
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in load_after],
        "verified_programs": synth.left, "problems": loaded.left, "share": round(share, 4),
        "records": {f"{m}/{k}": n for (m, k), n in sorted(methods.items())},
        "timing_s": report.timing,
        "baseline": {"programs": len(programs), "serial_run_s": round(serial, 3),
                     "run_many_s": round(batched, 3),
                     "ratio": round(serial / max(batched, 1e-9), 2)},
    }
    console.print(f"verified programs: {synth.left}/{loaded.left} problems = {share:.1%} "
                  f"(target >= 85%)")
    console.print(f"wall {wall:.1f} s for {args.limit} problems (target < 60 s); "
                  f"{os.cpu_count()} CPUs, load average {load_before[0]:.2f} before, "
                  f"{load_after[0]:.2f} after")
    console.print("records: " + ", ".join(f"{k} {v}" for k, v in out["records"].items()))
    console.print("timing (s): " + ", ".join(f"{k} {v}" for k, v in report.timing.items()))
    console.print(f"baseline: {len(programs)} programs one at a time {serial:.2f} s vs "
                  f"run_many {batched:.2f} s: {out['baseline']['ratio']}x")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
