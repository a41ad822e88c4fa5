"""Sandbox throughput and latency against a naive baseline, in one run.

    python benchmarks/sandbox.py [--workers N] [--quick] [--json]

For (a) a trivial program and (b) a program that uses sympy, measures executions per second
(``run_many`` with N workers) and p50/p99 latency (one run at a time) for

* ours: ``verimath.reasoning.sandbox.Sandbox`` with isolation on (bubblewrap + uid + rlimits here);
* naive: a fresh ``python -c`` per run (the same interpreter and venv) with the same rlimits
  (address space, CPU, file size, open files) set in ``preexec_fn``, N runs at a time.

and, for trivial programs, the bare-fork limit: ``fork`` + ``_exit`` + ``wait`` of a warm
interpreter (this Python with the sandbox's standard-library preload imported, as in the light
fork server), N processes at a time, no isolation, no I/O. ``ours / bare fork`` is the share of
that limit the sandbox reaches with every isolation layer on (issue 11 target: >= 0.4).

Also CPU milliseconds per execution (ours: every process of the sandbox plus this process;
naive: the children plus this process), which depends much less on what else the machine is
running than exec/s does. Prints a table with the ratios and the machine's load: compare
ratios from one run rather than absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from verimath.reasoning.sandbox import ExecStatus, Sandbox, SandboxConfig  # noqa: E402

TRIVIAL = "print(6 * 7)"
SYMPY = "import sympy as sp\nx = sp.Symbol('x')\nprint(sp.factor(x**2 - 1))"
TIMEOUT_S, MEMORY_MB = 10.0, 1024


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def naive_limits() -> None:
    # the same caps the sandbox sets; address space: the warm interpreter (~0.6 GiB with numpy and
    # sympy) + MEMORY_MB, as the sandbox computes it
    mem = (600 + MEMORY_MB) << 20
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    cpu = int(TIMEOUT_S) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 20, 64 << 20))
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    os.setsid()


def tree_cpu(root: int) -> float:
    """CPU seconds of ``root``'s live descendants, including the children they reaped."""
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                todo += [int(x) for x in f.read().split()]
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


BARE_FORK = """
import os, sys, time
from verimath.reasoning.sandbox.state import STDLIB_PRELOAD
import importlib
for m in STDLIB_PRELOAD:
    importlib.import_module(m)
import gc; gc.collect(); gc.freeze()
n = int(sys.argv[1])
sys.stdout.write("ready\\n"); sys.stdout.flush(); sys.stdin.readline()
c0, t0 = os.times(), time.perf_counter()
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
c1, t1 = os.times(), time.perf_counter()
print(t1 - t0, sum(c1[:4]) - sum(c0[:4]))
"""


def bench_bare_fork(n: int, workers: int) -> dict[str, float]:
    """fork+exit+wait/s of ``workers`` warm interpreters forking at once (the limit)."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    procs = [subprocess.Popen([sys.executable, "-c", BARE_FORK, str(n)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(workers)]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline() == "ready\n"
    t0 = time.perf_counter()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    got = [[float(x) for x in p.communicate(timeout=600)[0].split()] for p in procs]
    dt = time.perf_counter() - t0
    return {"per_s": n * workers / dt, "p50_ms": sum(g[0] for g in got) / workers / n * 1e3,
            "cpu_ms": sum(g[1] for g in got) / (n * workers) * 1e3}


def naive_run(code: str) -> float:
    env = {"PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "1", "LANG": "C.UTF-8"}
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env,
                       preexec_fn=naive_limits, timeout=TIMEOUT_S * 3)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"naive run failed: {p.stderr[-500:]!r}")
    return dt


def bench_naive(code: str, n_tp: int, n_lat: int, workers: int) -> dict[str, float]:
    naive_run(code)
    lat = [naive_run(code) for _ in range(n_lat)]
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    h0, t0 = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(workers) as ex:
        list(ex.map(naive_run, [code] * n_tp))
    dt, c1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime) + time.process_time() - h0
    return {"per_s": n_tp / dt, "p50_ms": pct(lat, 0.5) * 1e3, "p99_ms": pct(lat, 0.99) * 1e3,
            "cpu_ms": cpu / n_tp * 1e3}


def bench_ours(sb: Sandbox, code: str, n_tp: int, n_lat: int) -> dict[str, float]:
    for r in sb.run_many([code] * 20):
        assert r.status is ExecStatus.OK, r
    lat = []
    for _ in range(n_lat):
        t0 = time.perf_counter()
        r = sb.run(code)
        lat.append(time.perf_counter() - t0)
        assert r.status is ExecStatus.OK, r
    root = sb._server.proc.pid if sb._server is not None else os.getpid()
    s0, h0, t0 = tree_cpu(root), time.process_time(), time.perf_counter()
    res = sb.run_many([code] * n_tp)
    dt = time.perf_counter() - t0
    cpu = tree_cpu(root) - s0 + time.process_time() - h0
    assert all(r.status is ExecStatus.OK for r in res)
    return {"per_s": n_tp / dt, "p50_ms": pct(lat, 0.5) * 1e3, "p99_ms": pct(lat, 0.99) * 1e3,
            "cpu_ms": cpu / n_tp * 1e3}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--quick", action="store_true", help="fewer runs (a smoke test)")
    ap.add_argument("--json", action="store_true", help="also print the numbers as JSON")
    args = ap.parse_args()
    k = 0.2 if args.quick else 1.0
    n = {"ours_tp": int(2000 * k), "ours_lat": int(300 * k), "naive_tp": int(100 * k),
         "naive_lat": int(50 * k), "naive_sympy_tp": int(20 * k), "naive_sympy_lat": int(10 * k),
         "bare": int(3000 * k)}
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} "
          f"{load[2]:.1f}; workers={args.workers}; python {sys.version.split()[0]}")
    before = bench_bare_fork(n["bare"], args.workers)
    t0 = time.perf_counter()
    cfg = SandboxConfig(timeout_s=TIMEOUT_S, memory_mb=MEMORY_MB, workers=args.workers)
    with Sandbox(cfg) as sb:
        print(f"sandbox: isolation {sb.isolation}; started in {time.perf_counter() - t0:.2f} s")
        ours = {"trivial": bench_ours(sb, TRIVIAL, n["ours_tp"], n["ours_lat"]),
                "sympy": bench_ours(sb, SYMPY, n["ours_tp"] // 2, n["ours_lat"])}
    after = bench_bare_fork(n["bare"], args.workers)  # before + after: the load drifts
    bare = {k: (before[k] + after[k]) / 2 for k in before}
    naive = {"trivial": bench_naive(TRIVIAL, n["naive_tp"], n["naive_lat"], args.workers),
             "sympy": bench_naive(SYMPY, n["naive_sympy_tp"], n["naive_sympy_lat"],
                                  args.workers)}
    print(f"\n{'program':8s} {'executor':7s} {'exec/s':>9s} {'p50 ms':>9s} {'p99 ms':>9s}"
          f" {'CPU ms/exec':>12s}")
    for prog in ("trivial", "sympy"):
        for name, d in (("ours", ours[prog]), ("naive", naive[prog])):
            print(f"{prog:8s} {name:7s} {d['per_s']:9.1f} {d['p50_ms']:9.2f} {d['p99_ms']:9.2f}"
                  f" {d['cpu_ms']:12.2f}")
        o, b = ours[prog], naive[prog]
        print(f"{prog:8s} {'ratio':7s} {o['per_s'] / b['per_s']:8.1f}x "
              f"{b['p50_ms'] / o['p50_ms']:8.1f}x {'':9s} {b['cpu_ms'] / o['cpu_ms']:11.1f}x"
              "  (ours vs naive)")
    print(f"\nbare fork limit: {bare['per_s']:.0f} fork+exit+wait/s ({args.workers} warm "
          f"interpreters at once, measured before and after ours: {before['per_s']:.0f}, "
          f"{after['per_s']:.0f}); {bare['p50_ms']:.3f} ms and {bare['cpu_ms']:.3f} CPU ms each")
    print(f"trivial: ours / bare fork = {ours['trivial']['per_s'] / bare['per_s']:.2f} in exec/s "
          f"(target >= 0.4), {bare['cpu_ms'] / ours['trivial']['cpu_ms']:.2f} in CPU per run")
    load = os.getloadavg()
    print(f"\nload average after: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    if args.json:
        print(json.dumps({"ours": ours, "naive": naive, "bare_fork": bare,
                          "ratio_vs_bare_fork": ours["trivial"]["per_s"] / bare["per_s"],
                          "workers": args.workers}))


if __name__ == "__main__":
    main()
