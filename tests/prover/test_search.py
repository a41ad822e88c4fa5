"""Best-first search in the scripted env: finds the proof, follows scores, respects budgets."""

from __future__ import annotations

from typing import Any

import pytest

from verimath.backends import Completion, SamplingParams
from verimath.prover.scripted import FakeClock, ScriptedEnv
from verimath.prover.search import (
    BackendTacticPolicy,
    SearchConfig,
    SearchStatus,
    TacticProposal,
    best_first_search,
    tactics_to_proof,
)
from verimath.prover.types import GoalState, ProofEnv, ProofTask, ProverInfraError, TacticStatus

STMT = "theorem t (a b : ℕ) (h : a = b) : b = a ∧ a = a := by\n"
TASK = ProofTask(STMT, "", "", "t")
ROOT = "a b : ℕ\nh : a = b\n⊢ b = a ∧ a = a"
LEFT = "case left\na b : ℕ\nh : a = b\n⊢ b = a\n\ncase right\na b : ℕ\nh : a = b\n⊢ a = a"
RIGHT = "case right\na b : ℕ\nh : a = b\n⊢ a = a"
DEAD = "a b : ℕ\nh : a = b\n⊢ False"
TREE: dict[str, dict[str, Any]] = {
    ROOT: {"constructor": LEFT, "exfalso": DEAD, "simp": TacticStatus.ERROR,
           "sorry": ""},
    LEFT: {"exact h.symm": RIGHT, "rfl": TacticStatus.ERROR, "omega": TacticStatus.TIMEOUT},
    RIGHT: {"rfl": ""},
    DEAD: {"simp at h": DEAD, "contradiction": TacticStatus.ERROR},
}


class TablePolicy:
    """Proposes fixed (tactic, logprob) lists per state; records what it was asked."""

    def __init__(self, table: dict[str, list[tuple[str, float]]]) -> None:
        self.table = table
        self.asked: list[str] = []

    def propose(self, task: ProofTask, state: GoalState, width: int) -> list[TacticProposal]:
        self.asked.append(state.pp)
        return [TacticProposal(t, lp) for t, lp in self.table.get(state.pp, [])][:width]


GOOD_POLICY = {
    ROOT: [("sorry", -0.1), ("exfalso", -0.5), ("constructor", -1.0), ("simp", -2.0)],
    LEFT: [("omega", -0.2), ("rfl", -0.3), ("exact h.symm", -0.4)],
    RIGHT: [("rfl", -0.1)],
    DEAD: [("simp at h", -0.1), ("contradiction", -0.2)],
}


def test_scripted_env_is_a_proof_env() -> None:
    assert isinstance(ScriptedEnv(TREE, ROOT), ProofEnv)
    env = ScriptedEnv.from_dict({"roots": {"t": ROOT},
                                 "tree": {ROOT: {"rfl": "", "simp": "error", "c": RIGHT}}})
    root = env.start(TASK)
    assert env.run_tactic(root, "rfl").status is TacticStatus.PROVED
    assert env.run_tactic(root, "simp").status is TacticStatus.ERROR
    assert env.run_tactic(root, "c").state == GoalState(RIGHT, ("c",), 1)
    assert env.run_tactic(root, "ring").status is TacticStatus.ERROR


def test_finds_the_proof_and_reports_tree_size() -> None:
    env = ScriptedEnv(TREE, {"t": ROOT})
    res = best_first_search(TASK, env, TablePolicy(GOOD_POLICY), SearchConfig(width=4))
    assert res.status is SearchStatus.PROVED
    assert res.tactics == ("constructor", "exact h.symm", "rfl")
    assert res.proof == "by\n  constructor\n  exact h.symm\n  rfl"
    assert res.nodes == 4  # ROOT, DEAD, LEFT, RIGHT
    assert res.outcomes["rejected"] == 1  # 'sorry' never reached the tree
    assert res.outcomes["timeout"] == 1 and res.outcomes["error"] >= 2
    d = res.to_dict()
    assert d["status"] == "proved" and d["nodes"] == 4 and d["proof"] == res.proof


def test_expands_best_cumulative_score_first() -> None:
    policy = TablePolicy(GOOD_POLICY)
    best_first_search(TASK, ScriptedEnv(TREE, ROOT), policy, SearchConfig(width=4))
    # DEAD (score -0.5) is expanded before LEFT (-1.0); DEAD's child is a repeat, not requeued
    assert policy.asked[:3] == [ROOT, DEAD, LEFT]


def test_expansion_budget() -> None:
    policy = TablePolicy(GOOD_POLICY)
    res = best_first_search(TASK, ScriptedEnv(TREE, ROOT), policy,
                            SearchConfig(width=4, max_expansions=2))
    assert res.status is SearchStatus.EXPANSION_BUDGET
    assert res.expansions == 2 and len(policy.asked) == 2 and res.proof is None


def test_wall_budget_with_a_fake_clock() -> None:
    clock = FakeClock()
    env = ScriptedEnv(TREE, ROOT, clock=clock, tactic_cost_s=10.0)
    res = best_first_search(TASK, env, TablePolicy(GOOD_POLICY),
                            SearchConfig(width=4, wall_s=25.0), clock=clock)
    assert res.status is SearchStatus.WALL_BUDGET
    assert len(env.calls) == 3 and res.wall_s == pytest.approx(30.0)


def test_exhausted_when_nothing_left() -> None:
    res = best_first_search(TASK, ScriptedEnv(TREE, ROOT),
                            TablePolicy({ROOT: [("simp", -0.1)]}), SearchConfig())
    assert res.status is SearchStatus.EXHAUSTED and res.expansions == 1


def test_env_failure_is_infra_error_not_failure() -> None:
    class Broken(ScriptedEnv):
        def run_tactic(self, state: GoalState, tactic: str) -> Any:
            raise ProverInfraError("lean died")

    res = best_first_search(TASK, Broken(TREE, ROOT), TablePolicy(GOOD_POLICY), SearchConfig())
    assert res.status is SearchStatus.INFRA_ERROR and "lean died" in res.message
    res2 = best_first_search(TASK, ScriptedEnv(TREE, {"other": ROOT}), TablePolicy(GOOD_POLICY),
                             SearchConfig())
    assert res2.status is SearchStatus.INFRA_ERROR


def test_max_depth() -> None:
    no_timeout = {**GOOD_POLICY, LEFT: [("rfl", -0.3), ("exact h.symm", -0.4)]}
    res = best_first_search(TASK, ScriptedEnv(TREE, ROOT), TablePolicy(no_timeout),
                            SearchConfig(width=4, max_depth=2))
    assert res.status is SearchStatus.EXHAUSTED  # RIGHT is at depth 2: never expanded
    # an "omega" that runs Lean out of time is the tactic's failed expansion (issue 18): the
    # same search is still a judgment, "no proof", with the timeout counted in its outcomes
    res = best_first_search(TASK, ScriptedEnv(TREE, ROOT), TablePolicy(GOOD_POLICY),
                            SearchConfig(width=4, max_depth=2))
    assert res.status is SearchStatus.EXHAUSTED and res.infra_failures == 0
    assert res.outcomes["timeout"] == 1


class LogprobBackend:
    """A Backend returning fixed texts with log-probabilities (ScriptedBackend has none)."""

    name = "fake"
    model_id = "fake-logprob"

    def __init__(self, outs: list[tuple[str, float | None]]) -> None:
        self.outs = outs
        self.params: list[SamplingParams] = []

    def generate(self, prompts: list[Any], params: SamplingParams) -> list[list[Completion]]:
        self.params.append(params)
        return [[Completion(t, "stop", "\n", 10, 3, lp) for t, lp in self.outs[: params.n]]
                for _ in prompts]

    def render(self, prompt: Any) -> str:
        return str(prompt)

    def close(self) -> None:
        pass


def test_backend_policy_merges_duplicates_and_sorts() -> None:
    be = LogprobBackend([("rfl", -2.0), ("simp", -0.5), (" rfl ", -1.0), ("", -0.1)])
    pol = BackendTacticPolicy(be, SamplingParams(temperature=1.0, max_tokens=64))
    props = pol.propose(TASK, GoalState(ROOT), 4)
    assert [(p.tactic, p.logprob) for p in props] == [("simp", -0.5), ("rfl", -1.0)]
    p = be.params[0]
    assert p.n == 4 and p.logprobs and "\n" in p.stop
    assert ROOT in pol.template.render(formal_statement=STMT, goal=ROOT)


def test_backend_policy_without_logprobs_ranks_by_order() -> None:
    from verimath.testing import ScriptedBackend

    tactics = ["constructor", "exact h.symm", "rfl"]
    be = ScriptedBackend(lambda prompt, j, params: tactics[j % 3] + "\n")
    props = BackendTacticPolicy(be, SamplingParams(temperature=1.0)).propose(
        TASK, GoalState(ROOT), 3)
    assert [p.tactic for p in props] == tactics
    assert props[0].logprob > props[1].logprob > props[2].logprob


def test_search_with_a_backend_policy_end_to_end() -> None:
    from verimath.testing import ScriptedBackend

    answers = {ROOT: "constructor", LEFT: "exact h.symm", RIGHT: "rfl"}

    def policy(prompt: Any, j: int, params: SamplingParams) -> str:
        goal = next(g for g in (LEFT, RIGHT, ROOT) if g in prompt)
        return answers[goal] if j == 0 else "simp"

    res = best_first_search(TASK, ScriptedEnv(TREE, ROOT),
                            BackendTacticPolicy(ScriptedBackend(policy), SamplingParams()),
                            SearchConfig(width=2))
    assert res.status is SearchStatus.PROVED and res.tactics == ("constructor", "exact h.symm",
                                                                 "rfl")


def test_tactics_to_proof_indents_multiline_tactics() -> None:
    assert tactics_to_proof(["have h2 : a = a := by\n  rfl", "simp"]) == \
        "by\n  have h2 : a = a := by\n    rfl\n  simp"


def test_search_config_validation() -> None:
    with pytest.raises(ValueError):
        SearchConfig(width=0)
    with pytest.raises(ValueError, match="wall_s"):
        SearchConfig(wall_s=0)


# -- Lean crashes are infrastructure; a tactic's own timeout is a failed expansion ----------


def test_a_tactic_that_runs_lean_out_of_time_is_a_failed_expansion() -> None:
    """A policy must not escape "no proof" by proposing tactics that hang Lean (issue 18)."""
    tree = {ROOT: {"simp": TacticStatus.ERROR, "omega": TacticStatus.TIMEOUT}}
    res = best_first_search(TASK, ScriptedEnv(tree, ROOT),
                            TablePolicy({ROOT: [("simp", -0.1), ("omega", -0.2)]}),
                            SearchConfig())
    assert res.status is SearchStatus.EXHAUSTED and res.judged and res.infra_failures == 0
    assert res.outcomes["timeout"] == 1


@pytest.mark.parametrize("bad", [TacticStatus.CRASHED])
def test_search_that_ran_out_after_lean_failures_is_unjudged(bad: TacticStatus) -> None:
    tree = {ROOT: {"simp": TacticStatus.ERROR, "omega": bad}}
    res = best_first_search(TASK, ScriptedEnv(tree, ROOT),
                            TablePolicy({ROOT: [("simp", -0.1), ("omega", -0.2)]}),
                            SearchConfig())
    assert res.status is SearchStatus.INFRA_ERROR and not res.judged
    assert res.infra_failures == 1 and res.outcomes[str(bad)] == 1
    assert "exhausted" in res.message and res.proof is None
    assert res.to_dict()["infra_failures"] == 1


def test_a_proof_found_despite_a_lean_timeout_is_judged() -> None:
    res = best_first_search(TASK, ScriptedEnv(TREE, {"t": ROOT}), TablePolicy(GOOD_POLICY),
                            SearchConfig(width=4))
    assert res.status is SearchStatus.PROVED and res.judged and res.infra_failures == 0
    assert res.outcomes["timeout"] == 1


def test_search_without_lean_failures_stays_a_judgment() -> None:
    res = best_first_search(TASK, ScriptedEnv(TREE, ROOT),
                            TablePolicy({ROOT: [("simp", -0.1)]}), SearchConfig())
    assert res.status is SearchStatus.EXHAUSTED and res.judged and res.infra_failures == 0


def test_dojo_crash_in_search_is_unjudged() -> None:
    # the real DojoEnv over a lean_dojo-shaped process that crashes (DojoCrashError, OOM) on
    # "omega": the env replaces the process, the search must not call the attempt wrong
    from tests.prover.test_envs import DJ, FakeDojo
    from tests.prover.test_envs import TASK as DJ_TASK
    from verimath.prover.dojo import DojoConfig, DojoEnv

    FakeDojo.instances = []
    env = DojoEnv(DojoConfig(), dojo_factory=lambda task: FakeDojo())
    policy = TablePolicy({DJ["init"]["pp"]: [("linarith", -0.1), ("omega", -0.2)]})
    try:
        res = best_first_search(DJ_TASK, env, policy, SearchConfig(width=2))
    finally:
        env.close()
    assert res.outcomes == {"error": 1, "crashed": 1}
    assert res.status is SearchStatus.INFRA_ERROR and not res.judged
    assert len(FakeDojo.instances) == 2  # the crashed process was replaced
