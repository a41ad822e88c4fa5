"""Lean timeouts are judged on the REPL's CPU time, not on the wall clock of a loaded machine.

A proof that runs Lean out of its time limit burns CPU the whole time: a failed proof
(UNVERIFIABLE, reward 0.0). A proof that timed out having had little CPU was starved by the
machine: it is re-checked with a CPU-time limit, and when even the re-check's wall cap passes
without the CPU being used, the verdict is could-not-judge (ERROR), never a failed proof.

No Lean runs here: :class:`ProcessRepl` is ``lean_interact.LeanServer`` over a hand-written test
double of the REPL process, a child that speaks the REPL's JSON and answers with the recorded
Lean output of ``fixtures/repl_audit.json``; it burns CPU (a proof that hangs Lean) or sleeps (a
process the machine does not schedule) on the proof command when told to. lean_interact's
protocol, timeout and kill code, the pool, the CPU meter, the checker and the reward are real.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.prover.conftest import AUDIT_CASES, MINIF2F_HEADER, setup_answer
from tests.prover.transcripts import ScriptLeanServer
from verimath.prover.checker import LeanChecker
from verimath.prover.repl import ReplConfig, ReplPool
from verimath.prover.types import (
    LeanStarved,
    LeanTimeout,
    LeanVersion,
    ProofTask,
    TacticStatus,
)
from verimath.records import VerdictStatus
from verimath.rl.rewards import ProofReward, VerifierPool

LEAN = LeanVersion("leanprover/lean4:v4.9.0", "abc123")
GOOD = next(c for c in AUDIT_CASES if c["id"] == "valid_continuation")
TASK = ProofTask(GOOD["formal_statement"], MINIF2F_HEADER, GOOD["proof"])

CHILD = r"""
import json, os, sys, time
mode_file, answers = sys.argv[1], json.loads(sys.argv[2])
for line in sys.stdin:
    if not line.strip():
        continue
    req = json.loads(line)
    step = "tactic" in req  # a ProofStep: the tactic stands in for the proof command
    if not step and req.get("env") is None:
        out = {"env": 0}
    elif not step and req["env"] == 0:
        out = answers["setup"]
    else:
        mode = open(mode_file).read().strip()
        if mode.startswith("sleep_once"):  # the first proof request anywhere sleeps
            if not os.path.exists(mode_file + ".slept"):
                open(mode_file + ".slept", "w").close()
                mode = "sleep"
            else:
                mode = mode.removeprefix("sleep_once").removeprefix("_then_") or "ok"
        if mode == "burn":
            while True:
                pass
        if mode == "sleep":
            time.sleep(3600)
        out = answers["step" if step else "proof"]
    sys.stdout.write(json.dumps(out) + "\n\n")
    sys.stdout.flush()
"""


class ProcessRepl(ScriptLeanServer):
    """``lean_interact.LeanServer`` whose process is :data:`CHILD` instead of ``lake env repl``
    (a hand-written test double of Lean: the protocol code, timeouts and kills are
    lean_interact's own)."""

    def __init__(self, mode_file: Path) -> None:  # noqa: D107 - documented on the class
        answers = {"setup": setup_answer(GOOD["setup"]), "proof": GOOD["response"],
                   "step": {"proofState": 1, "goals": []}}
        super().__init__([sys.executable, "-c", CHILD, str(mode_file), json.dumps(answers)])


@pytest.fixture
def repl(tmp_path):
    """(pool, set_mode, servers, mode_file): a pool of ProcessRepl workers and their mode."""
    mode_file = tmp_path / "mode"
    mode_file.write_text("ok")
    made: list[ProcessRepl] = []

    def factory() -> ProcessRepl:
        made.append(ProcessRepl(mode_file))
        return made[-1]

    pool = ReplPool(ReplConfig(workers=1, timeout_s=1.0, retry_wall_factor=5.0), LEAN,
                    server_factory=factory)
    yield pool, mode_file.write_text, made, mode_file
    pool.close()
    for s in made:
        s.kill()


def test_a_proof_that_burns_cpu_is_judged_at_once(repl) -> None:
    pool, set_mode, made, _ = repl
    set_mode("burn")
    with pytest.raises(LeanTimeout) as e:
        pool.run(GOOD["command"], MINIF2F_HEADER, setup=GOOD["setup"])
    assert e.value.cpu_s is not None and e.value.cpu_s >= 0.5  # it used its CPU time
    # judged on the first try, or (when the burning child got under 95% of a core, or the last
    # 0.1 s sample came early) by the CPU-timed re-check: never starved
    assert pool.stats.starved == 0 and len(made) == pool.stats.rechecked + 1


def test_a_starved_check_is_rechecked_and_judged_by_the_recheck(repl) -> None:
    pool, set_mode, made, _ = repl
    set_mode("sleep_once")  # the first process gets no CPU; the re-check runs normally
    lr = pool.run(GOOD["command"], MINIF2F_HEADER, setup=GOOD["setup"])
    assert not lr.errors and pool.stats.rechecked == 1 and pool.stats.starved == 0
    assert len(made) == 2 and not made[0].is_alive()


def test_a_burning_recheck_is_stopped_at_its_cpu_limit(repl) -> None:
    pool, set_mode, made, _ = repl
    set_mode("sleep_once_then_burn")  # the first try is starved, the re-check burns
    with pytest.raises(LeanTimeout) as e:
        pool.run(GOOD["command"], MINIF2F_HEADER, setup=GOOD["setup"])
    assert pool.stats.rechecked == 1 and pool.stats.starved == 0 and len(made) == 2
    assert e.value.cpu_s is not None and e.value.cpu_s >= 1.0  # stopped at its CPU limit
    assert not any(s.is_alive() for s in made)


def test_a_cpu_limit_kill_races_nothing(repl) -> None:
    """The meter kills the processes; lean_interact's own cleanup runs in the request thread
    only (its kill is not thread-safe): 8 re-checks stopped at their CPU limit in a row."""
    pool, set_mode, _, mode_file = repl
    for _ in range(8):
        set_mode("sleep_once_then_burn")
        with pytest.raises(LeanTimeout):
            pool.run(GOOD["command"], MINIF2F_HEADER, setup=GOOD["setup"])
        Path(f"{mode_file}.slept").unlink()
    assert pool.stats.rechecked == 8 and pool.stats.starved == 0


def test_starved_on_every_try_is_could_not_judge(repl) -> None:
    pool, set_mode, _, _ = repl
    set_mode("sleep")
    with pytest.raises(LeanStarved, match="too loaded to decide"):
        pool.run(GOOD["command"], MINIF2F_HEADER, setup=GOOD["setup"])
    assert pool.stats.rechecked == 1 and pool.stats.starved == 1


@pytest.mark.parametrize("mode, status, reward", [
    ("ok", VerdictStatus.CORRECT, 1.0),
    ("burn", VerdictStatus.UNVERIFIABLE, 0.0),  # the proof's own timeout: a failed proof
    ("sleep", VerdictStatus.ERROR, None),  # the machine's: could not judge, no reward
])
def test_checker_and_reward(repl, mode, status, reward) -> None:
    pool, set_mode, _, _ = repl
    set_mode(mode)
    checker = LeanChecker(pool, timeout_s=1.0)
    assert checker.check(TASK).status is status
    fn = ProofReward(VerifierPool(checker=checker))
    got = fn([f"```lean4\n{GOOD['proof']}\n```"], formal_statement=[GOOD["formal_statement"]],
             header=[MINIF2F_HEADER])
    assert got == [reward]


@pytest.mark.parametrize("mode, status", [
    ("burn", TacticStatus.TIMEOUT),  # the tactic's own: a failed expansion
    ("sleep", TacticStatus.CRASHED),  # the machine's: an infrastructure failure (unjudged)
])
def test_search_tactic_timeouts(repl, mode, status) -> None:
    from verimath.prover.repl import ReplProofEnv

    pool, set_mode, _, _ = repl
    env = ReplProofEnv(pool, timeout_s=1.0)
    try:
        root = env.start(ProofTask("theorem t (a : ℕ) : a = a", MINIF2F_HEADER, ""))
        set_mode(mode)
        assert env.run_tactic(root, "rfl").status is status
    finally:
        env.close()
    assert pool.stats.starved == (mode == "sleep")
