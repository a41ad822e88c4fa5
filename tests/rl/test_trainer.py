"""VerifierGate: verifier None skips the whole sample through TRL's public reward contract."""

from __future__ import annotations

import functools

import pytest
import torch

from verimath.rl.trainer import InfraFailureWatch, RewardInfraFailure, VerifierGate


class Counted:
    """A reward returning fixed values per completion text; counts its calls."""

    def __init__(self, name, table):
        self.__name__, self.table, self.calls = name, table, 0

    def __call__(self, completions, **_):
        self.calls += 1
        return [self.table[c] for c in completions]


def call_like_trl(funcs, completions, metrics):
    """What GRPOTrainer does per batch: every function, in order, on the same lists."""
    kw = {"prompts": ["p"] * len(completions), "completion_ids": [[1]] * len(completions),
          "log_metric": lambda name, v: metrics.setdefault(name, []).append(v),
          "trainer_state": None}
    return [f(completions=completions, **kw) for f in funcs]


def test_shaping_terms_are_none_where_no_verifier_judged_whatever_the_order():
    answer = Counted("answer", {"a": 1.0, "b": None, "c": 0.0})
    fmt = Counted("format", {"a": 1.0, "b": 1.0, "c": 0.5})
    gate = VerifierGate([fmt, answer], [False, True])  # the shaping term comes first
    wrapped = gate.wrapped()
    assert [w.__name__ for w in wrapped] == ["format", "answer"]  # TRL's column names
    metrics = {}
    out = call_like_trl(wrapped, ["a", "b", "c"], metrics)
    assert out == [[1.0, None, 0.5], [1.0, None, 0.0]]
    assert metrics == {"rewards/skipped_frac": [pytest.approx(1 / 3)]}
    assert answer.calls == 1 and fmt.calls == 1  # the verifier ran once for the batch
    call_like_trl(wrapped, ["c", "a"], metrics)  # a new batch is judged anew
    assert answer.calls == 2 and metrics["rewards/skipped_frac"][-1] == 0.0


def test_a_sample_one_verifier_judged_keeps_every_score():
    """Two verifiers: proof does not apply to an informal problem (None), answer judged it."""
    answer = Counted("answer", {"x": 1.0, "y": None})
    proof = Counted("proof", {"x": None, "y": None})
    fmt = Counted("format", {"x": 0.2, "y": 0.3})
    out = call_like_trl(VerifierGate([answer, proof, fmt], [True, True, False]).wrapped(),
                        ["x", "y"], {})
    assert out == [[1.0, None], [None, None], [0.2, None]]


def test_the_watch_counts_training_steps_only_and_stops_training():
    answer = Counted("answer", {"a": None})
    fmt = Counted("format", {"a": 1.0})
    training = [False]
    gate = VerifierGate([fmt, answer], [False, True],
                        watch=InfraFailureWatch(["format", "answer"], max_steps=2),
                        training=lambda: training[0])
    wrapped = gate.wrapped()
    for _ in range(3):  # evaluation batches do not count
        call_like_trl(wrapped, ["a"], {})
    training[0] = True
    call_like_trl(wrapped, ["a"], {})
    # format's own output judged the sample: gating it to None does not make it "down"
    with pytest.raises(RewardInfraFailure, match="'answer' could not judge any sample for 2"):
        call_like_trl(wrapped, ["a"], {})


def test_the_watch_covers_shaping_rewards_without_verifiers():
    """tools.mode=tir with only tool_use: a sandbox down for n steps still stops training."""
    tool_use = Counted("tool_use", {"a": None, "b": None})
    gate = VerifierGate([tool_use], [False], watch=InfraFailureWatch(["tool_use"], 2))
    metrics = {}
    assert call_like_trl(gate.wrapped(), ["a", "b"], metrics) == [[None, None]]
    assert metrics == {"rewards/skipped_frac": [0.0]}  # nothing skipped: no verifier
    with pytest.raises(RewardInfraFailure, match="'tool_use' could not judge any sample for 2"):
        call_like_trl(gate.wrapped(), ["a", "b"], metrics)


def test_the_watch_sees_the_gathered_rows():
    seen = []

    class Spy(InfraFailureWatch):
        def update_one(self, index, rewards):
            seen.append((index, rewards.clone()))

    def gather(rows):  # two processes: this one's rows, then another's
        return torch.cat([rows, torch.tensor([1.0])])

    gate = VerifierGate([Counted("answer", {"a": None})], [True], watch=Spy(["answer"], 1),
                        gather=gather)
    call_like_trl(gate.wrapped(), ["a"], {})
    assert len(seen) == 1 and seen[0][0] == 0 and seen[0][1].shape == (2,)
    assert torch.isnan(seen[0][1][0]) and seen[0][1][1] == 1.0


def test_rewards_that_cannot_be_gated_are_refused_up_front():
    async def async_reward(completions, **_):
        return [0.0] * len(completions)

    answer = Counted("answer", {})
    with pytest.raises(ValueError, match=r"\['async_reward'\] are not synchronous"):
        VerifierGate([answer, async_reward], [True, False])
    with pytest.raises(ValueError, match="not synchronous"):
        VerifierGate([answer, torch.nn.Linear(1, 1)], [True, False])
    with pytest.raises(ValueError, match="not synchronous"):
        VerifierGate([answer, "some/reward-model"], [True, False])
    with pytest.raises(ValueError, match="2 reward functions but 1"):
        VerifierGate([answer, answer], [True])

    def plain(completions, scale, **_):
        return [scale] * len(completions)

    gate = VerifierGate([answer, functools.partial(plain, scale=0.5)], [True, False])
    assert [w.__name__ for w in gate.wrapped()] == ["answer", "plain"]


def test_a_wrong_length_reward_raises():
    answer = Counted("answer", {"a": 1.0})

    def short(completions, **_):
        return []

    with pytest.raises(ValueError, match="'short' returned 0 rewards for 1 completions"):
        call_like_trl(VerifierGate([answer, short], [True, False]).wrapped(), ["a"], {})
