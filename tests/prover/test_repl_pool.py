"""The REPL pool: header reuse, recycling after N uses / a timeout / a crash, parallel checks.

The servers are fakes shaped like ``lean_interact.LeanServer`` (``RecordedServer``); requests
are the real ``lean_interact`` ``Command`` objects and answers go through its response models.
"""

from __future__ import annotations

import inspect
import threading
import time
from typing import Any

import pytest
from lean_interact import Command, LeanServer

from tests.prover.conftest import AUDIT_CASES, MINIF2F_HEADER, setup_answer
from verimath.prover.checker import LeanChecker
from verimath.prover.repl import ReplConfig, ReplPool
from verimath.prover.scripted import RecordedServer
from verimath.prover.types import LeanCrash, LeanTimeout, LeanVersion, ProofTask
from verimath.records import VerdictStatus

LEAN = LeanVersion("leanprover/lean4:v4.9.0", "abc123")
GOOD = next(c for c in AUDIT_CASES if c["id"] == "valid_continuation")


class Servers:
    """A factory of RecordedServers that remembers every server it made."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.made: list[RecordedServer] = []
        self._lock = threading.Lock()

    def __call__(self) -> RecordedServer:
        srv = RecordedServer(self.answer)
        with self._lock:
            self.made.append(srv)
        return srv

    def header_requests(self) -> int:
        return sum(1 for s in self.made for r in s.requests if r.env is None)


def _ok(req: Any) -> Any:
    return {"env": 0} if req.env is None else GOOD["response"]


def _pool(answer: Any, **cfg: Any) -> tuple[ReplPool, Servers]:
    servers = Servers(answer)
    return ReplPool(ReplConfig(**cfg), LEAN, server_factory=servers), servers


def test_header_is_elaborated_once_per_process() -> None:
    pool, servers = _pool(_ok, workers=1)
    for _ in range(5):
        pool.run(GOOD["command"], MINIF2F_HEADER)
    assert len(servers.made) == 1 and servers.header_requests() == 1
    other = MINIF2F_HEADER + "open Finset\n"
    pool.run(GOOD["command"], other)
    pool.run(GOOD["command"], other)
    assert servers.header_requests() == 2
    proof_reqs = [r for r in servers.made[0].requests if r.env is not None]
    assert all(isinstance(r, Command) and r.env == 0 for r in proof_reqs)


def test_recycled_after_max_uses() -> None:
    pool, servers = _pool(_ok, workers=1, max_uses=3)
    for _ in range(7):
        pool.run(GOOD["command"], MINIF2F_HEADER)
    assert len(servers.made) == 3
    assert [s.killed for s in servers.made] == [True, True, False]
    assert pool.stats.retired_uses == 2


def test_timeout_kills_and_replaces_the_process() -> None:
    state = {"n": 0}

    def answer(req: Any) -> Any:
        if req.env is None:
            return {"env": 0}
        state["n"] += 1
        return TimeoutError("no answer") if state["n"] == 2 else GOOD["response"]

    pool, servers = _pool(answer, workers=1)
    pool.run(GOOD["command"], MINIF2F_HEADER)
    with pytest.raises(LeanTimeout):
        pool.run(GOOD["command"], MINIF2F_HEADER)
    assert servers.made[0].killed and pool.stats.retired_timeout == 1
    pool.run(GOOD["command"], MINIF2F_HEADER)
    assert len(servers.made) == 2 and not servers.made[1].killed
    assert servers.header_requests() == 2  # the new process pays the header again


@pytest.mark.parametrize("exc", [ConnectionAbortedError("closed"), ChildProcessError("gone"),
                                 BrokenPipeError("pipe"), MemoryError("oom")])
def test_crash_kills_and_replaces_the_process(exc: BaseException) -> None:
    state = {"n": 0}

    def answer(req: Any) -> Any:
        if req.env is None:
            return {"env": 0}
        state["n"] += 1
        return exc if state["n"] == 1 else GOOD["response"]

    pool, servers = _pool(answer, workers=1)
    with pytest.raises(LeanCrash):
        pool.run(GOOD["command"], MINIF2F_HEADER)
    assert servers.made[0].killed and pool.stats.retired_crash == 1
    pool.run(GOOD["command"], MINIF2F_HEADER)
    assert len(servers.made) == 2


def test_garbage_answer_is_a_crash() -> None:
    pool, servers = _pool(lambda r: {"env": 0} if r.env is None else {"messages": "garbage"},
                          workers=1)
    with pytest.raises(LeanCrash):
        pool.run(GOOD["command"], MINIF2F_HEADER)
    assert servers.made[0].killed


def test_server_that_cannot_start_is_a_crash() -> None:
    def broken() -> Any:
        raise ChildProcessError("The Lean server could not be started")

    pool = ReplPool(ReplConfig(workers=1), LEAN, server_factory=broken)
    with pytest.raises(LeanCrash, match="could not start"):
        pool.run("x", "")
    # the slot was given back: a later call can try again (and fail the same way, not hang)
    with pytest.raises(LeanCrash):
        pool.run("x", "")


def test_check_many_runs_in_parallel_and_keeps_order() -> None:
    active = {"now": 0, "max": 0}
    lock = threading.Lock()

    def answer(req: Any) -> Any:
        if req.env is None:
            return {"env": 0}
        if req.cmd == GOOD["setup"]:
            return setup_answer(req.cmd)
        with lock:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
        time.sleep(0.05)
        with lock:
            active["now"] -= 1
        return GOOD["response"] if "interval_cases" in req.cmd else {
            "messages": [{"severity": "error", "pos": {"line": 2, "column": 2},
                          "data": "linarith failed"}], "env": 1}

    pool, servers = _pool(answer, workers=3)
    checker = LeanChecker(pool)
    good = ProofTask(GOOD["formal_statement"], MINIF2F_HEADER, GOOD["proof"])
    bad = ProofTask(GOOD["formal_statement"], MINIF2F_HEADER, "  linarith\n")
    tasks = [good, bad, good, bad, good, bad]
    verdicts = checker.check_many(tasks)
    assert [v.status for v in verdicts] == [VerdictStatus.CORRECT, VerdictStatus.WRONG] * 3
    assert active["max"] == 3 and len(servers.made) == 3
    # each process elaborated the header and the reference statement once
    setups = [r for s in servers.made for r in s.requests if r.cmd == GOOD["setup"]]
    assert len(setups) == 3 and all(r.env == 0 for r in setups)


def test_config_rejects_bad_values_with_a_fix() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ReplConfig(workers=0)
    with pytest.raises(ValueError, match="8192"):
        ReplConfig(memory_mb=100)
    with pytest.raises(ValueError, match="max_uses"):
        ReplConfig(max_uses=0)


def test_lean_interact_api_the_pool_relies_on() -> None:
    """Fails when lean_interact's API drifts from what ReplPool calls."""
    params = inspect.signature(LeanServer.run).parameters
    assert "timeout" in params and params["timeout"].kind is inspect.Parameter.KEYWORD_ONLY
    assert callable(LeanServer.kill) and callable(LeanServer.is_alive)
    from lean_interact import LeanREPLConfig, LocalProject, ProofStep

    cfg_params = inspect.signature(LeanREPLConfig.__init__).parameters
    assert {"project", "memory_hard_limit_mb", "lake_path"} <= set(cfg_params)
    assert {"directory", "auto_build", "lake_path"} <= set(
        inspect.signature(LocalProject).parameters)
    assert Command(cmd="x", env=1).model_dump(by_alias=True, exclude_none=True) == \
        {"cmd": "x", "env": 1}
    assert ProofStep(proof_state=2, tactic="simp").model_dump(
        by_alias=True, exclude_none=True) == {"proofState": 2, "tactic": "simp"}
