"""Benchmark: verified trajectories per minute on GSM8K, and where the wall time goes.

Runs the informal datagen loop (GSM8K train, PoT, real sandbox, real math-verify grader) with the
embedded SmolLM2-135M-Instruct twice on the same problems:

* ``serial``   - verification inline (``max_inflight=0``): generate a batch, verify it, repeat;
* ``overlap``  - verification of batch i on a worker thread while batch i+1 generates.

For each it prints the funnel, verified trajectories per minute, and the split of the solve
stage's wall time into model generation, sandbox execution (PoT programs), grading, and the time
generation sat blocked waiting for verification (the sign that verification is the bottleneck).
The ratio line compares the two modes in this one run.

Usage: ``python benchmarks/datagen.py [--limit 16] [--n 4] [--max-tokens 256] [--threads 1]
[--json OUT]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def run_once(mode: str, args: argparse.Namespace, backend: object, out: Path) -> dict:
    from verimath.datagen.config import DatagenConfig, DecontamConfig, ExportConfig, SolveConfig
    from verimath.datagen.pipeline import Components, main
    from verimath.reasoning.grading import GraderConfig
    from verimath.reasoning.rollout import RolloutConfig
    from verimath.reasoning.sandbox import SandboxConfig

    cfg = DatagenConfig(
        mode="informal", inputs=("gsm8k_train",), limit=args.limit, out=str(out),
        max_inflight=0 if mode == "serial" else 2,
        decontam=DecontamConfig(benchmarks=("gsm8k", "math500")),
        rollout=RolloutConfig(strategy="pot", batch_problems=args.batch),
        sandbox=SandboxConfig(timeout_s=5.0, workers=2), grader=GraderConfig(workers=2),
        solve=SolveConfig(n=args.n, temperature=0.7, top_p=0.95, max_tokens=args.max_tokens,
                          seed=0, max_per_problem=args.n),
        export=ExportConfig(formats=("jsonl", "parquet")),
    )
    t0 = time.perf_counter()
    report = main(cfg, components=Components(backend=backend))
    wall = time.perf_counter() - t0
    t = report.timing
    solve_wall = t.get("stage:solve", wall)
    model = t.get("model_generate_s", 0.0)
    sandbox = max(0.0, t.get("rollout_s", 0.0) - model)
    grade = t.get("grade_s", 0.0)
    verified = report.counts.get("verified", 0)
    return {
        "mode": mode, "wall_s": round(wall, 2), "solve_wall_s": round(solve_wall, 2),
        "verified": verified, "verified_per_min": round(60 * verified / wall, 2),
        "model_generate_s": round(model, 2), "sandbox_exec_s": round(sandbox, 2),
        "grade_s": round(grade, 2), "wait_verify_s": round(t.get("wait_verify", 0.0), 2),
        "share_generation": round(model / solve_wall, 3) if solve_wall else None,
        "share_verification": round((sandbox + grade) / solve_wall, 3) if solve_wall else None,
        "funnel": [s.to_dict() for s in report.funnel.stages],
        "funnel_text": report.funnel.render_text(f"funnel ({mode})"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=16, help="GSM8K train problems")
    ap.add_argument("--n", type=int, default=4, help="samples per problem")
    ap.add_argument("--batch", type=int, default=8, help="problems per generation batch")
    ap.add_argument("--max-tokens", dest="max_tokens", type=int, default=256)
    ap.add_argument("--modes", default="serial,overlap")
    ap.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's); "
                    "1 is much faster when other processes share the CPUs")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from verimath.backends import BackendConfig, load_backend

    t = time.perf_counter()
    backend = load_backend(BackendConfig(backend="transformers", model="default",
                                         batch_size=args.batch * args.n))
    load_s = time.perf_counter() - t
    print(f"model: {getattr(backend, 'model_id', 'default')} loaded in {load_s:.1f} s; "
          f"{args.limit} GSM8K train problems x {args.n} PoT samples, "
          f"max_tokens={args.max_tokens}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}")
    results = []
    try:
        for mode in args.modes.split(","):
            with tempfile.TemporaryDirectory(prefix=f"bench-datagen-{mode}-") as d:
                r = run_once(mode, args, backend, Path(d))
            results.append(r)
            print(r["funnel_text"])
            print(f"[{mode}] {r['verified']} verified trajectories in {r['wall_s']} s "
                  f"= {r['verified_per_min']} per minute")
            print(f"[{mode}] solve stage {r['solve_wall_s']} s: model generation "
                  f"{r['model_generate_s']} s ({100 * (r['share_generation'] or 0):.0f}%), "
                  f"sandbox {r['sandbox_exec_s']} s, grading {r['grade_s']} s "
                  f"(verification {100 * (r['share_verification'] or 0):.0f}%), "
                  f"generation blocked on verification {r['wait_verify_s']} s")
    finally:
        backend.close()  # type: ignore[attr-defined]
    if len(results) == 2:
        a, b = results
        ratio = a["wall_s"] / b["wall_s"] if b["wall_s"] else float("nan")
        print(f"ratio {a['mode']}/{b['mode']} wall time: {ratio:.2f}x "
              f"(same verified count: {a['verified'] == b['verified']})")
    if args.json:
        Path(args.json).write_text(json.dumps(
            [{k: v for k, v in r.items() if k != "funnel_text"} for r in results], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
