"""Benchmark: sampled TIR at n=64 on the real sandbox, sessions opened lazily behind a bound.

The scenario of issue 11 (``verimath eval --benchmark gsm8k --limit 8 --strategy tir --n 64``)
through the real eval job (real sandbox, real grader) with a scripted two-cell policy instead of
a model, so only the TIR engine and the sandbox are measured: every attempt runs
``x = <gold - 1>`` and then ``print(x + 1)`` in its own session and boxes the printed value.

Runs twice in one process and prints, for each, wall time, sessions opened, the peak of sessions
open at once (counted by a wrapper around the real Sandbox, independently of the engine), and
accuracy (must be 100%: every attempt prints the gold answer):

* ``bounded``   - ``rollout.max_sessions`` at its default (64);
* ``unbounded`` - ``max_sessions = batch_problems * n`` (every attempt may hold a session at
  once, the old up-front peak); the ratio line compares the two.

Usage: ``VERIMATH_DATA=/path/to/data python benchmarks/tir_sessions.py [--limit 8] [--n 64]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def policy_for(limit: int):
    from verimath.datasets import load_problems
    from verimath.testing import assistant_so_far, question_of

    gold = {p.informal: p.answer for p in load_problems("gsm8k", limit=limit).problems}

    def policy(prompt, j, params):
        outs = re.findall(r"```output\n(.*?)\n```", assistant_so_far(prompt), re.S)
        if not outs:
            return f"```python\nx = {int(gold[question_of(prompt)]) - 1}\n```\n"
        if len(outs) == 1:
            return "```python\nprint(x + 1)\n```\n"
        return f"The answer is \\boxed{{{outs[-1].strip()}}}."

    return policy


def run_once(name: str, args: argparse.Namespace, max_sessions: int | None) -> dict:
    import verimath.reasoning.sandbox as sbmod
    from verimath.config import load_config
    from verimath.reasoning.evaluation import EvalConfig, main
    from verimath.testing import CountingSandbox, ScriptedBackend

    over = [f"out={tempfile.mkdtemp(prefix='tir-bench-')}", "benchmark=gsm8k",
            f"limit={args.limit}", f"n={args.n}", "temperature=1.0", "rollout.strategy=tir"]
    if max_sessions is not None:
        over.append(f"rollout.max_sessions={max_sessions}")
    cfg = load_config(EvalConfig, None, over)
    real = sbmod.Sandbox
    made: list[CountingSandbox] = []

    def counted(*a: object, **k: object) -> CountingSandbox:
        made.append(CountingSandbox(real(*a, **k)))
        return made[-1]

    sbmod.Sandbox = counted  # type: ignore[assignment,misc]
    try:
        t = time.perf_counter()
        rep = main(cfg, progress=False, backend=ScriptedBackend(policy_for(args.limit)))
        wall = time.perf_counter() - t
    finally:
        sbmod.Sandbox = real  # type: ignore[misc]
    c = made[0]
    return {"mode": name, "max_sessions": cfg.rollout.max_sessions, "wall_s": round(wall, 2),
            "attempts": rep.summary["n_samples"], "sessions_opened": c.opened,
            "peak_open_sessions": c.peak, "accuracy": rep.summary["accuracy"],
            "infra_failures": rep.summary["n_infra_failures"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = [run_once("bounded", args, None)]
    try:
        rows.append(run_once("unbounded", args, 8 * args.n))
    except Exception as e:  # noqa: BLE001 - the baseline may hit the sandbox's limits
        rows.append({"mode": "unbounded", "error": f"{type(e).__name__}: {e}"})
    for r in rows:
        print(json.dumps(r))  # noqa: T201 - benchmark output
    if "wall_s" in rows[1]:
        b, u = rows
        print(f"ratio wall(bounded)/wall(unbounded) = {b['wall_s'] / u['wall_s']:.2f}; "  # noqa: T201
              f"peak sessions {b['peak_open_sessions']} vs {u['peak_open_sessions']}; "
              f"unjudged (infra) {b['infra_failures']} vs {u['infra_failures']} of "
              f"{b['attempts']}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
