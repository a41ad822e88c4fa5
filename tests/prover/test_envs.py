"""Tactic envs on recorded responses: the REPL proof-state env and the LeanDojo env.

The LeanDojo fake returns the real ``lean_dojo`` result classes and raises its real
exceptions, so an API change in lean_dojo fails here.
"""

from __future__ import annotations

import inspect
from typing import Any

import lean_dojo
import pytest
from lean_dojo import (
    Dojo,
    DojoCrashError,
    DojoTacticTimeoutError,
    LeanError,
    ProofFinished,
    ProofGivenUp,
    TacticState,
)

from tests.prover.conftest import MINIF2F_HEADER, load_fixture
from verimath.prover.dojo import DojoConfig, DojoEnv
from verimath.prover.repl import ReplConfig, ReplPool, ReplProofEnv
from verimath.prover.scripted import RecordedServer
from verimath.prover.types import (
    LeanVersion,
    ProofEnv,
    ProofTask,
    ProverInfraError,
    TacticStatus,
)

PS = load_fixture("repl_proofstep.json")
DJ = load_fixture("dojo_amc12a_2015_p10.json")
TASK = ProofTask(PS["formal_statement"], MINIF2F_HEADER, "", "amc12a_2015_p10")
H3 = "have h₃ : (x + 1) * (y + 1) = 81 := by ring_nf; linarith"
H4 = "have h₄ : y ≤ 8 := by nlinarith"
FIN = "interval_cases y <;> omega"


# ------------------------------------------------------------------ REPL proof-state env
class ProofStepServers:
    """RecordedServers answering from repl_proofstep.json; ``timeout_on`` makes one tactic hang
    (once); each server has its own proof-state numbering like a real REPL process."""

    def __init__(self, timeout_on: str | None = None) -> None:
        self.timeout_on = timeout_on
        self.made: list[RecordedServer] = []

    def __call__(self) -> RecordedServer:
        from lean_interact import ProofStep

        def respond(req: Any) -> Any:
            if not isinstance(req, ProofStep):
                return {"env": 0} if req.env is None else PS["open"]
            if req.tactic == self.timeout_on:
                self.timeout_on = None
                return TimeoutError("no answer")
            return PS["steps"].get(f"{req.proof_state}|{req.tactic}",
                                   {"message": f"Lean error: unknown tactic {req.tactic}"})

        srv = RecordedServer(respond)
        self.made.append(srv)
        return srv


def _repl_env(servers: ProofStepServers) -> ReplProofEnv:
    pool = ReplPool(ReplConfig(workers=1), LeanVersion("t", "m"), server_factory=servers)
    return ReplProofEnv(pool)


def test_repl_env_outcomes() -> None:
    env = _repl_env(ProofStepServers())
    assert isinstance(env, ProofEnv)
    root = env.start(TASK)
    assert root.pp.endswith("⊢ x = 26") and root.path == ()
    s1 = env.run_tactic(root, H3)
    assert s1.status is TacticStatus.OPEN and "h₃" in s1.state.pp
    assert env.run_tactic(root, "linarith").status is TacticStatus.ERROR
    err = env.run_tactic(root, "exact foo")
    assert err.status is TacticStatus.ERROR and "Unknown identifier `foo`" in err.message
    thrown = env.run_tactic(root, "nlinarith [foo]")  # a tactic that throws: Lean error reply
    assert thrown.status is TacticStatus.ERROR and "unknown tactic" in thrown.message
    two = env.run_tactic(root, "constructor")
    assert two.status is TacticStatus.OPEN and two.state.num_goals == 2
    # a search tactic is screened before Lean (issue 18; a sorry-emitting search answer is
    # GIVEN_UP, covered by the transcript classification tests)
    assert env.run_tactic(root, "exact?").status is TacticStatus.REJECTED
    assert env.run_tactic(root, "native_decide").status is TacticStatus.REJECTED
    s2 = env.run_tactic(s1.state, H4)
    done = env.run_tactic(s2.state, FIN)
    assert done.status is TacticStatus.PROVED and done.state.path == (H3, H4, FIN)
    env.close()


def test_repl_env_replaces_a_timed_out_process_and_replays_states() -> None:
    servers = ProofStepServers(timeout_on=H4)
    env = _repl_env(servers)
    root = env.start(TASK)
    s1 = env.run_tactic(root, H3)
    out = env.run_tactic(s1.state, H4)
    assert out.status is TacticStatus.TIMEOUT
    assert servers.made[0].killed and len(servers.made) == 2
    # s1 belonged to the dead process: it is replayed on the new one, transparently
    s2 = env.run_tactic(s1.state, H4)
    assert s2.status is TacticStatus.OPEN
    assert env.run_tactic(s2.state, FIN).status is TacticStatus.PROVED
    replayed = [r.tactic for r in servers.made[1].requests if hasattr(r, "tactic")]
    assert replayed == [H3, H4, FIN]
    env.close()
    assert env.pool.stats.retired_timeout == 1


def test_repl_env_statement_that_does_not_elaborate() -> None:
    def factory() -> RecordedServer:
        return RecordedServer(lambda r: {"env": 0} if r.env is None else {
            "messages": [{"severity": "error", "pos": {"line": 1, "column": 9},
                          "data": "unknown identifier 'foo'"}], "env": 1})

    env = ReplProofEnv(ReplPool(ReplConfig(workers=1), LeanVersion("t", "m"),
                                server_factory=factory))
    with pytest.raises(ProverInfraError, match="does not elaborate"):
        env.start(TASK)
    env.close()


# ------------------------------------------------------------------ LeanDojo env
def _dojo_result(spec: dict[str, Any]) -> Any:
    kind = spec.get("type")
    if "raise" in spec:
        exc = {"DojoTacticTimeoutError": DojoTacticTimeoutError,
               "DojoCrashError": DojoCrashError}[spec["raise"]]
        raise exc(spec.get("message", ""))
    if kind == "TacticState":
        return TacticState(spec["pp"], spec["id"])
    if kind == "ProofFinished":
        return ProofFinished(spec["tactic_state_id"])
    if kind == "LeanError":
        return LeanError(spec["error"])
    if kind == "ProofGivenUp":
        return ProofGivenUp()
    raise AssertionError(spec)


class FakeDojo:
    """Shaped like ``lean_dojo.Dojo``: a context manager whose ``__enter__`` gives
    ``(dojo, initial TacticState)`` and whose ``run_tac`` replays the fixture."""

    instances: list[FakeDojo] = []

    def __init__(self, fail_start: bool = False) -> None:
        self.fail_start = fail_start
        self.exited = False
        self.tactics: list[str] = []
        FakeDojo.instances.append(self)

    def __enter__(self) -> tuple[FakeDojo, TacticState]:
        if self.fail_start:
            raise lean_dojo.DojoInitError("Unexpected EOF")
        return self, TacticState(DJ["init"]["pp"], DJ["init"]["id"])

    def __exit__(self, *exc: object) -> None:
        self.exited = True

    def run_tac(self, state: TacticState, tactic: str) -> Any:
        assert isinstance(state, TacticState)
        self.tactics.append(tactic)
        for step in DJ["steps"]:
            if step["from"] == state.id and step["tactic"] == tactic:
                return _dojo_result(step["result"])
        return LeanError(f"unknown tactic {tactic}")


def _dojo_env(**kw: Any) -> DojoEnv:
    FakeDojo.instances = []
    return DojoEnv(DojoConfig(), dojo_factory=lambda task: FakeDojo(**kw))


def test_dojo_env_outcomes() -> None:
    env = _dojo_env()
    root = env.start(TASK)
    assert root.pp == DJ["init"]["pp"] and root.num_goals == 1
    assert env.run_tactic(root, "linarith").status is TacticStatus.ERROR
    # a search tactic is screened before Lean (issue 18; a sorry-emitting search answer is
    # GIVEN_UP, covered by the transcript classification tests)
    assert env.run_tactic(root, "exact?").status is TacticStatus.REJECTED
    s1 = env.run_tactic(root, H3)
    s2 = env.run_tactic(s1.state, H4)
    assert env.run_tactic(s2.state, FIN).status is TacticStatus.PROVED
    env.close()
    assert FakeDojo.instances[0].exited


def test_dojo_env_replaces_a_stuck_or_crashed_process() -> None:
    env = _dojo_env()
    root = env.start(TASK)
    s1 = env.run_tactic(root, H3)
    slow = "nlinarith [sq_nonneg (x - y), sq_nonneg (x + y), mul_pos h₀ h₀]"
    assert env.run_tactic(root, slow).status is TacticStatus.TIMEOUT
    assert FakeDojo.instances[0].exited and len(FakeDojo.instances) == 2
    crashed = env.run_tactic(root, "omega")
    assert crashed.status is TacticStatus.CRASHED and "out of memory" in crashed.message
    assert len(FakeDojo.instances) == 3
    # a state from the first process still works: it is replayed in the third
    s2 = env.run_tactic(s1.state, H4)
    assert s2.status is TacticStatus.OPEN
    assert FakeDojo.instances[2].tactics == [H3, H4]
    env.close()


def test_dojo_env_gives_up_after_max_restarts() -> None:
    env = DojoEnv(dojo_factory=lambda task: FakeDojo(), max_restarts=1)
    root = env.start(TASK)
    assert env.run_tactic(root, "omega").status is TacticStatus.CRASHED
    with pytest.raises(ProverInfraError, match="giving up"):
        env.run_tactic(root, "omega")


def test_dojo_init_failure_is_infrastructure() -> None:
    env = _dojo_env(fail_start=True)
    with pytest.raises(ProverInfraError, match="could not open"):
        env.start(TASK)


def test_lean_dojo_api_the_env_relies_on() -> None:
    """Fails when lean_dojo's API drifts from what DojoEnv calls."""
    assert list(inspect.signature(Dojo.run_tac).parameters) == ["self", "state", "tactic"]
    assert "timeout" in inspect.signature(Dojo.__init__).parameters
    assert TacticState("x : ℕ\n⊢ x = x", 3).num_goals == 1
    assert ProofFinished(4).tactic_state_id == 4
    assert LeanError("e").error == "e"
    assert DojoCrashError("OOM").is_out_of_memory
    assert TacticState("a b : ℕ\n⊢ a = b\n\nc : ℕ\n⊢ c = c", 1).num_goals == 2
