"""``verimath serve`` throughput and latency against the in-process sandbox and the CLI, in one run.

    python benchmarks/serve.py [--workers N] [--n 2000] [--concurrency 64] [--quick] [--json]

For a trivial program (``print(i * 7)``) measures executions per second and p50/p99 latency of

* http /run_code: one program per request to a ``verimath serve`` subprocess on 127.0.0.1
  (SandboxFusion's endpoint), ``--concurrency`` requests in flight (aiohttp client);
* http /v1/exec: batches of 16 programs per request, 8 requests in flight;
* in-process: ``Sandbox.run_many`` with the same ``--workers`` (the ceiling: no HTTP);
* cli: single-shot ``verimath exec prog.py`` subprocess calls, one at a time (nearly all
  start-up: interpreter, imports, sandbox boot).

Latency is one request (or call) at a time. Every output is checked (a wrong or lost result
aborts the run). Prints a table with ratios and the machine's load; compare ratios from one run
rather than absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from verimath.reasoning.sandbox import Sandbox, SandboxConfig  # noqa: E402


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "verimath", "serve", "--port", str(port),
                             "--workers", str(workers), "--log-level", "warning"],
                            cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    end = time.monotonic() + 120
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read()}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


async def http_run_code(url: str, n: int, conc: int) -> float:
    import aiohttp

    sem = asyncio.Semaphore(conc)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conc)) as s:
        async def one(i: int) -> None:
            async with sem, s.post(url + "/run_code", json={"code": f"print({i} * 7)"}) as r:
                out = (await r.json())["run_result"]["stdout"]
                if out != f"{i * 7}\n":
                    raise SystemExit(f"wrong result for {i}: {out!r}")
        t = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return n / (time.perf_counter() - t)


async def http_exec(url: str, n: int, batch: int = 16, conc: int = 8) -> float:
    import aiohttp

    sem = asyncio.Semaphore(conc)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conc)) as s:
        async def one(lo: int) -> None:
            ids = range(lo, min(n, lo + batch))
            body = {"requests": [{"code": f"print({i} * 7)"} for i in ids]}
            async with sem, s.post(url + "/v1/exec", json=body) as r:
                res = (await r.json())["results"]
                if [x["stdout"] for x in res] != [f"{i * 7}\n" for i in ids]:
                    raise SystemExit(f"wrong batch at {lo}")
        t = time.perf_counter()
        await asyncio.gather(*(one(lo) for lo in range(0, n, batch)))
        return n / (time.perf_counter() - t)


def http_latency(url: str, runs: int) -> list[float]:
    lat = []
    with httpx.Client() as c:
        for i in range(runs):
            t = time.perf_counter()
            r = c.post(url + "/run_code", json={"code": f"print({i} * 7)"})
            lat.append(time.perf_counter() - t)
            assert r.json()["run_result"]["stdout"] == f"{i * 7}\n"
    return lat


def inprocess(workers: int, n: int, runs: int) -> tuple[float, list[float]]:
    with Sandbox(SandboxConfig(workers=workers)) as sb:
        sb.run_many(["print(1)"] * 50)  # warm
        t = time.perf_counter()
        res = sb.run_many([f"print({i} * 7)" for i in range(n)])
        rate = n / (time.perf_counter() - t)
        assert [r.stdout for r in res] == [f"{i * 7}\n" for i in range(n)]
        lat = []
        for i in range(runs):
            t = time.perf_counter()
            r = sb.run(f"print({i} * 7)")
            lat.append(time.perf_counter() - t)
            assert r.stdout == f"{i * 7}\n"
    return rate, lat


def cli_latency(calls: int) -> list[float]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    lat = []
    with tempfile.TemporaryDirectory() as d:
        prog = Path(d) / "prog.py"
        prog.write_text("print(6 * 7)\n")
        for _ in range(calls):
            t = time.perf_counter()
            out = subprocess.run([sys.executable, "-m", "verimath", "exec", str(prog)], cwd=REPO,
                                 env=env, capture_output=True, text=True, check=True).stdout
            lat.append(time.perf_counter() - t)
            assert json.loads(out)["stdout"] == "42\n"
    return lat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--n", type=int, default=2000, help="programs per throughput measurement")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--latency-runs", type=int, default=300)
    ap.add_argument("--cli-calls", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="n=300, 50 latency runs, 2 CLI calls")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.n, a.latency_runs, a.cli_calls = 300, 50, 2
    rows: dict[str, dict[str, float]] = {}
    proc, url = start_server(a.workers)
    try:
        for i in range(50):  # warm
            httpx.post(url + "/run_code", json={"code": f"print({i})"})
        lat = http_latency(url, a.latency_runs)
        rate = asyncio.run(http_run_code(url, a.n, a.concurrency))
        rows["http /run_code"] = {"exec_s": rate, "p50_ms": pct(lat, .5) * 1e3,
                                  "p99_ms": pct(lat, .99) * 1e3}
        rows["http /v1/exec x16"] = {"exec_s": asyncio.run(http_exec(url, a.n))}
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    rate, lat = inprocess(a.workers, a.n, a.latency_runs)
    rows["in-process run_many"] = {"exec_s": rate, "p50_ms": pct(lat, .5) * 1e3,
                                   "p99_ms": pct(lat, .99) * 1e3}
    lat = cli_latency(a.cli_calls)
    rows["cli verimath exec"] = {"exec_s": len(lat) / sum(lat), "p50_ms": pct(lat, .5) * 1e3,
                                 "p99_ms": max(lat) * 1e3}
    base = rows["in-process run_many"]["exec_s"]
    cli = rows["cli verimath exec"]["exec_s"]
    for r in rows.values():
        r["vs_inprocess"] = r["exec_s"] / base
        r["vs_cli"] = r["exec_s"] / cli
    load = os.getloadavg()
    if a.json:
        print(json.dumps({"workers": a.workers, "n": a.n, "concurrency": a.concurrency,
                          "load": load, "rows": rows}, indent=1))
        return
    print(f"trivial program, workers={a.workers}, n={a.n}, concurrency={a.concurrency}, "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print(f"{'path':<22}{'exec/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'x in-proc':>11}{'x cli':>10}")
    for name, r in rows.items():
        p50 = f"{r['p50_ms']:.2f}" if "p50_ms" in r else "-"
        p99 = f"{r['p99_ms']:.2f}" if "p99_ms" in r else "-"
        print(f"{name:<22}{r['exec_s']:>10.1f}{p50:>10}{p99:>10}{r['vs_inprocess']:>11.2f}"
              f"{r['vs_cli']:>10.1f}")


if __name__ == "__main__":
    main()
