"""kimina ``/api/check`` through ``verimath serve`` vs the same checks in-process, one run.

    python benchmarks/serve_kimina.py [--requests 60] [--workers 2]

Lean is the REPLAY of the recorded Lean REPL transcripts (``tests/prover/lean_repl_replay.py``,
not Lean; one check per REPL process), so this measures the service path (HTTP, request
models, audit, thread hand-off, pool) around a near-instant "Lean", not Lean itself. Both
sides run the same :class:`KiminaCheckService` on the same kind of pool; every answer is
checked (a wrong status aborts). Prints requests/s of each and the ratio HTTP / in-process.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from tests.prover.test_kimina_serve import ReplayLeanServer  # noqa: E402
from tests.reasoning.serve_util import ThreadServer, free_port  # noqa: E402
from verimath.prover.kimina_serve import KiminaCheckService, KiminaSnippet  # noqa: E402
from verimath.prover.repl import ReplConfig, ReplPool  # noqa: E402
from verimath.prover.types import LeanVersion  # noqa: E402
from verimath.reasoning.sandbox import Sandbox, SandboxConfig  # noqa: E402

CODE = "import Mathlib\n\ntheorem test : 0 < 1 := by sorry"  # recorded: mathlib/exact


def service(workers: int, log: Path) -> KiminaCheckService:
    pool = ReplPool(ReplConfig(workers=workers, timeout_s=20.0, max_uses=1),
                    LeanVersion("REPLAY (not Lean)", None),
                    server_factory=lambda: ReplayLeanServer(log))
    return KiminaCheckService(pool)


def inprocess(n: int, workers: int, log: Path) -> float:
    svc = service(workers, log)
    try:
        t0 = time.perf_counter()
        with ThreadPoolExecutor(workers) as ex:
            res = list(ex.map(lambda i: svc.check_one(KiminaSnippet(id=str(i), code=CODE),
                                                      20.0), range(n)))
        dt = time.perf_counter() - t0
    finally:
        svc.close()
    assert all(r.response and r.response.get("sorries") for r in res), res[:2]
    return n / dt


def over_http(n: int, workers: int, log: Path) -> float:
    box = Sandbox(SandboxConfig(workers=1))
    from verimath.reasoning.service.app import ServeConfig

    with ThreadServer(ServeConfig(port=free_port(), sandbox=box.config), sandbox=box,
                      lean=service(workers, log)) as srv, httpx.Client(timeout=60) as c:
        def one(i: int) -> dict:
            r = c.post(f"{srv.url}/api/check",
                       json={"snippets": [{"id": str(i), "code": CODE}], "timeout": 20})
            r.raise_for_status()
            return r.json()["results"][0]

        t0 = time.perf_counter()
        with ThreadPoolExecutor(workers) as ex:
            res = list(ex.map(one, range(n)))
        dt = time.perf_counter() - t0
    box.close()
    assert all(r.get("response", {}).get("sorries") for r in res), res[:2]
    return n / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=60)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "replay.jsonl"
        inproc = inprocess(a.requests, a.workers, log)
        http = over_http(a.requests, a.workers, log)
    print(f"in-process KiminaCheckService.check_one: {inproc:8.1f} checks/s")
    print(f"http POST /api/check (1 snippet each):   {http:8.1f} checks/s")
    print(f"ratio http / in-process: {http / inproc:.2f}")


if __name__ == "__main__":
    main()
