"""Benchmark: reference-guided synthesis on GSM8K train, no model (``gsm8k_reference`` preset).

Runs ``verimath datagen --config configs/datagen/gsm8k_reference.yaml --limit N`` in-process into
a fresh folder and prints the funnel, the share of problems with a verified program, the records
per method, where the wall time went, and the load average (the machine is shared). The target
(issue 12) is >= 85% verified and under 60 s for 200 problems on 2 cores.

Baseline in the same run (so both see the same machine load): the same problems with PoT
programs only and no augmentation; the ratio is what TIR trajectories plus augmentation cost on
top of the bare synthesis.

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
from typing import Any

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

    from verimath.config import load_config
    from verimath.datagen.config import DatagenConfig
    from verimath.datagen.pipeline import main as datagen

    console = Console()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="synth-bench-") as tmp:
        report, wall, rows = _run(DatagenConfig, load_config, datagen, args.limit, tmp, "full", [])
        _, base_wall, _ = _run(DatagenConfig, load_config, datagen, args.limit, tmp, "base",
                               ["synth.formats=[pot]", "synth.augment.numeric_variants=0",
                                "synth.augment.backward=0"])
    load_after = os.getloadavg()
    console.print(report.funnel.table("gsm8k_reference funnel"))
    synth = report.funnel.get("synthesize")
    loaded = report.funnel.get("load")
    assert synth is not None and loaded is not None
    share = synth.left / max(1, loaded.left)
    methods = Counter((r["provenance"]["source_method"], r["kind"]) for r in rows)
    out = {
        "limit": args.limit, "cpus": os.cpu_count(), "wall_s": round(wall, 2),
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in load_after],
        "verified_programs": synth.left, "problems": loaded.left, "share": round(share, 4),
        "records": {f"{m}/{k}": n for (m, k), n in sorted(methods.items())},
        "timing_s": report.timing,
        "baseline": {"what": "PoT only, no augmentation", "wall_s": round(base_wall, 2),
                     "ratio": round(wall / max(base_wall, 1e-9), 2)},
    }
    console.print(f"verified programs: {synth.left}/{loaded.left} problems = {share:.1%} "
                  f"(target >= 85%)")
    console.print(f"wall {wall:.1f} s for {args.limit} problems (target < 60 s); "
                  f"{os.cpu_count()} CPUs, load average {load_before[0]:.2f} before, "
                  f"{load_after[0]:.2f} after")
    console.print("records: " + ", ".join(f"{k} {v}" for k, v in out["records"].items()))
    console.print("timing (s): " + ", ".join(f"{k} {v}" for k, v in report.timing.items()))
    console.print(f"baseline (PoT only, no augmentation): {base_wall:.1f} s; the full preset "
                  f"costs {out['baseline']['ratio']}x that")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


def _run(cfg_cls: Any, load_config: Any, datagen: Any, limit: int, tmp: str, name: str,
         overrides: list[str]) -> tuple[Any, float, list[dict[str, Any]]]:
    """One datagen run of the preset into ``tmp/name``: (report, wall seconds, data rows)."""
    cfg = load_config(cfg_cls, REPO / "configs/datagen/gsm8k_reference.yaml",
                      [f"limit={limit}", f"out={tmp}/{name}", *overrides])
    t = time.perf_counter()
    report = datagen(cfg)
    wall = time.perf_counter() - t
    rows = [json.loads(x) for x in Path(tmp, name, "data.jsonl").read_text().splitlines()]
    return report, wall, rows


if __name__ == "__main__":
    raise SystemExit(main())
