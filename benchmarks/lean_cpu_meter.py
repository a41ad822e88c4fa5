"""Benchmark: the cost of timing Lean requests in CPU time (``verimath.prover.repl.CpuMeter``).

Every REPL request (a whole-proof check or one tactic of best-first search) now runs under a
CPU meter: a thread that samples the REPL process tree's CPU time every 0.1 s, so that a
timeout can be told apart from a starved process. This measures what that costs per request
against the same requests sent straight through ``lean_interact.LeanServer.run`` (the baseline,
in the same run).

No Lean here: the REPL process is a stand-in that answers every command at once (``{"env":
0}``), which makes the overhead as large a fraction as it can be; a real tactic takes 10-100 ms
of Lean, a whole proof seconds.

Usage: ``python benchmarks/lean_cpu_meter.py [--requests 2000] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CHILD = r"""
import sys
for line in sys.stdin:
    if line.strip():
        sys.stdout.write('{"env": 0}\n\n')
        sys.stdout.flush()
"""


def _server():  # noqa: ANN202 - a LeanServer subclass defined lazily
    from lean_interact import LeanServer

    class InstantRepl(LeanServer):
        """``lean_interact.LeanServer`` over a process that answers every command at once."""

        def __init__(self) -> None:  # noqa: D107
            self.config = SimpleNamespace(
                enable_incremental_optimization=False, enable_parallel_elaboration=False,
                memory_hard_limit_mb=None, lean_version="v4.33.0-rc2")
            self._proc = None
            self._lock = threading.Lock()
            self.start()

        def start(self) -> None:
            self._proc = subprocess.Popen(
                [sys.executable, "-S", "-c", CHILD], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding="utf-8", text=True,
                bufsize=1, start_new_session=True)

    return InstantRepl()


def main() -> int:
    """Time N requests with and without the CPU meter; print the per-request overhead."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from lean_interact import Command

    from verimath.prover.repl import ReplWorker

    server = _server()
    worker = ReplWorker(server, header_timeout_s=60.0)
    req = Command(cmd="example : 1 = 1 := rfl", env=0)

    def plain() -> None:
        server.run(req, timeout=60.0)

    def metered() -> None:
        worker.request(req, 60.0)

    def metered_limited() -> None:
        worker.request(req, 60.0, 60.0)

    arms = {"LeanServer.run (baseline)": plain, "ReplWorker.request (CPU meter)": metered,
            "ReplWorker.request (meter + CPU limit)": metered_limited}
    per: dict[str, list[float]] = {k: [] for k in arms}
    for fn in arms.values():  # warm up
        for _ in range(50):
            fn()
    for _ in range(args.repeats):
        for name, fn in arms.items():  # interleaved, so drift in load hits every arm
            t0 = time.perf_counter()
            for _ in range(args.requests):
                fn()
            per[name].append((time.perf_counter() - t0) / args.requests * 1e6)
    server.kill()
    base = statistics.median(per["LeanServer.run (baseline)"])
    print(f"{args.requests} requests x {args.repeats} repeats, a REPL stand-in that answers "
          "at once (median of the repeats)")
    for name, xs in per.items():
        med = statistics.median(xs)
        print(f"  {name:40s} {med:8.1f} us/request  ({med / base:.2f}x baseline, "
              f"+{med - base:.0f} us)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
