"""Session cells through ``verimath serve``'s compat endpoints vs in-process sessions, one run.

    python benchmarks/serve_sessions.py [--workers N] [--sessions 4] [--cells 200] [--quick]

For a trivial stateful cell (``x += 1``) measures cells per second (``--sessions`` sessions in
parallel, one client thread each) and p50 latency per cell of

* in-process: :class:`SandboxSession.run` (the ceiling: no HTTP);
* http /execute: NeMo-Skills' protocol, ``language: ipython`` with an ``X-Session-ID`` header;
* http /run_jupyter: SandboxFusion's notebook endpoint, 10 cells per request (one fresh
  interpreter per request, so each request also pays a session open and close).

Every answer is checked (a wrong or lost result aborts the run). Prints ratios to in-process;
compare ratios from one run rather than absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from benchmarks.serve import pct, start_server  # noqa: E402
from verimath.reasoning.sandbox import Sandbox, SandboxConfig  # noqa: E402


def inprocess(workers: int, sessions: int, cells: int) -> tuple[float, list[float]]:
    with Sandbox(SandboxConfig(workers=workers)) as box:
        def one(_: int) -> list[float]:
            lat = []
            with box.session() as s:
                s.run("x = 0")
                for i in range(cells):
                    t = time.perf_counter()
                    r = s.run("x += 1\nx")
                    lat.append(time.perf_counter() - t)
                    assert r.stdout == f"{i + 1}\n", r
            return lat

        t0 = time.perf_counter()
        with ThreadPoolExecutor(sessions) as pool:
            lats = [x for xs in pool.map(one, range(sessions)) for x in xs]
        return sessions * cells / (time.perf_counter() - t0), lats


def nemo(url: str, sessions: int, cells: int) -> tuple[float, list[float]]:
    def one(k: int) -> list[float]:
        lat, sid = [], f"bench-{k}-{time.time_ns()}"
        with httpx.Client(base_url=url, timeout=60) as c:
            c.post("/execute", json={"generated_code": "x = 0", "timeout": 10},
                   headers={"X-Session-ID": sid})
            for i in range(cells):
                t = time.perf_counter()
                r = c.post("/execute", json={"generated_code": "x += 1\nx", "timeout": 10,
                                             "language": "ipython"},
                           headers={"X-Session-ID": sid}).json()
                lat.append(time.perf_counter() - t)
                assert r["stdout"] == f"{i + 1}\n", r
            c.delete(f"/sessions/{sid}")
        return lat

    t0 = time.perf_counter()
    with ThreadPoolExecutor(sessions) as pool:
        lats = [x for xs in pool.map(one, range(sessions)) for x in xs]
    return sessions * cells / (time.perf_counter() - t0), lats


def jupyter(url: str, sessions: int, cells: int) -> tuple[float, list[float]]:
    per = 10

    def one(_: int) -> list[float]:
        lat = []
        with httpx.Client(base_url=url, timeout=60) as c:
            for _r in range(max(1, cells // per)):
                t = time.perf_counter()
                body = {"cells": ["x = 0"] + ["x += 1\nx"] * (per - 1)}
                r = c.post("/run_jupyter", json=body).json()
                lat.append((time.perf_counter() - t) / per)
                assert r["status"] == "Success" and r["cells"][-1]["display"] == [
                    {"text/plain": str(per - 1)}], r
        return lat

    t0 = time.perf_counter()
    with ThreadPoolExecutor(sessions) as pool:
        lats = [x for xs in pool.map(one, range(sessions)) for x in xs]
    n = sessions * max(1, cells // per) * per
    return n / (time.perf_counter() - t0), lats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--sessions", type=int, default=4)
    ap.add_argument("--cells", type=int, default=200, help="cells per session")
    ap.add_argument("--quick", action="store_true", help="50 cells per session")
    a = ap.parse_args()
    cells = 50 if a.quick else a.cells
    base_rate, base_lat = inprocess(a.workers, a.sessions, cells)
    proc, url = start_server(a.workers)
    try:
        rows = [("in-process SandboxSession", base_rate, base_lat),
                ("http /execute (X-Session-ID)", *nemo(url, a.sessions, cells)),
                ("http /run_jupyter (10 cells)", *jupyter(url, a.sessions, cells))]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    print(f"{a.sessions} sessions x {cells} cells, workers={a.workers}, "
          f"load={os.getloadavg()[0]:.1f}")
    print(f"{'path':32} {'cells/s':>9} {'ratio':>6} {'p50 ms':>8} {'ratio':>6}")
    for name, rate, lat in rows:
        p50 = pct(lat, 0.5) * 1000
        print(f"{name:32} {rate:9.1f} {rate / base_rate:6.2f} {p50:8.2f} "
              f"{p50 / (pct(base_lat, 0.5) * 1000):6.2f}")


if __name__ == "__main__":
    main()
