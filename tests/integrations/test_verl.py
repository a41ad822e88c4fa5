"""verimath.integrations.verl, called the way verl's reward loop calls a custom compute_score.

verl itself is not installed here; ``_verl_reward_loop`` reproduces what verl's
``get_custom_reward_fn`` + ``NaiveRewardManager.run_single`` do with the function: merge
``reward_kwargs`` over the call's keywords, await an ``async def`` function or run a sync one
in the loop's thread pool, take ``result["score"]`` as the reward and append every key of
the dict to ``reward_extra_info``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import defaultdict
from functools import partial
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from verimath import rewards as R
from verimath.integrations import verl as V
from verimath.reasoning.grading import GraderUnavailable

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _fresh():
    R.configure(grader_workers=2, sandbox_timeout_s=2.0)
    yield
    R.close()


def _verl_reward_loop(fn, rows, reward_kwargs=None):
    """(scores (B,), reward_extra_info {key: (B,) np.ndarray}) as verl would build them."""
    reward_kwargs = dict(reward_kwargs or {})

    def call_sync(*a, **k):
        return fn(*a, **{**k, **reward_kwargs})

    async def call_async(*a, **k):
        return await fn(*a, **{**k, **reward_kwargs})

    is_async = inspect.iscoroutinefunction(fn)
    wrapped = partial(call_async if is_async else call_sync)

    async def run_single(row):
        kw = dict(data_source=row["data_source"], solution_str=row["response"],
                  ground_truth=row["reward_model"]["ground_truth"],
                  extra_info={**row.get("extra_info", {}), "num_turns": None,
                              "rollout_reward_scores": {}})
        if is_async:
            return await wrapped(**kw)
        return await asyncio.get_running_loop().run_in_executor(None, lambda: wrapped(**kw))

    async def run_all():
        return await asyncio.gather(*(run_single(r) for r in rows))

    results = asyncio.run(run_all())
    extra: dict[str, list] = defaultdict(list)
    scores = []
    for res in results:
        assert isinstance(res, dict)
        scores.append(res["score"])
        for k, v in res.items():
            extra[k].append(v)
    assert all(len(v) == len(rows) for v in extra.values())  # same keys every call
    return scores, {k: np.array(v) for k, v in extra.items()}


def _row(response, gt, source="openai/gsm8k"):
    return {"data_source": source, "response": response, "reward_model": {"ground_truth": gt}}


ROWS = [
    _row("48 + 24 = 72.\n#### 72", "72"),
    _row(r"So the answer is \boxed{\frac43}.", r"\frac{4}{3}"),
    _row("The answer is 71", "72"),
    _row("I give up", "72"),
    _row(r"\boxed{5}", None),  # no gold: could not judge
]


@pytest.mark.parametrize("fn", [V.compute_score, V.compute_score_async])
def test_verl_sees_score_plus_verdict_and_the_judged_flag(fn):
    scores, extra = _verl_reward_loop(fn, ROWS)
    assert scores == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert set(extra) == set(V.KEYS)
    assert extra["judged"].tolist() == [1.0, 1.0, 1.0, 1.0, 0.0]
    assert extra["verdict"].tolist() == ["correct", "correct", "wrong", "wrong", "bad_gold"]
    assert extra["judged"].dtype == np.float64  # averaged into val metrics as the judged share


def test_unjudged_score_is_configurable_and_raise_stops(monkeypatch, caplog):
    scores, extra = _verl_reward_loop(V.compute_score, ROWS[3:], {"unjudged_score": 0.5})
    assert scores == [0.0, 0.5] and extra["judged"].tolist() == [1.0, 0.0]
    assert "could not judge" in caplog.text
    with pytest.raises(V.Unjudged, match="bad_gold"):
        _verl_reward_loop(V.compute_score_async, ROWS[4:], {"on_unjudged": "raise"})
    with pytest.raises(ValueError, match="strategy"):
        V.compute_score("x", "1", "1", strategy="tool")
    with pytest.raises(ValueError, match="unjudged_score"):
        V.compute_score("x", "1", "1", unjudged_score=float("nan"))


def test_a_dead_grader_is_never_a_silent_zero(monkeypatch):
    class DeadGrader:
        def grade(self, gold, pred, *, extract=True):
            raise GraderUnavailable("grader worker failed to start: worker exited (code 1)")

    R.accuracy_reward(["1"], solution=["1"])
    monkeypatch.setitem(R._SHARED.members, "grader", DeadGrader())
    scores, extra = _verl_reward_loop(V.compute_score, ROWS[:2])
    assert extra["judged"].tolist() == [0.0, 0.0]
    assert extra["verdict"].tolist() == ["error", "error"]
    assert "GraderUnavailable: grader worker failed" in extra["reason"][0]


def test_pot_strategy_runs_the_program():
    rows = [_row("```python\nprint(6 * 7)\n```", "42"), _row("```python\nprint(1)\n```", "42"),
            _row("```python\nwhile True:\n    pass\n```", "42")]
    scores, extra = _verl_reward_loop(V.compute_score_async, rows, {"strategy": "pot"})
    assert scores == [1.0, 0.0, 0.0]  # the model's own timeout is a judged failure
    assert extra["judged"].tolist() == [1.0, 1.0, 1.0]


def test_mask_unjudged_zeroes_their_response_mask():
    _, extra = _verl_reward_loop(V.compute_score, ROWS)
    batch = SimpleNamespace(non_tensor_batch=dict(extra),
                            batch={"response_mask": torch.ones(len(ROWS), 3)})
    assert V.mask_unjudged(batch) == 1
    assert batch.batch["response_mask"].sum(dim=1).tolist() == [3, 3, 3, 3, 0]
    with pytest.raises(KeyError, match="judged"):
        V.judged_mask(SimpleNamespace(non_tensor_batch={}))


def test_verl_and_trl_share_one_verdict_rule():
    """The same gaming completions as the TRL red team (issue 18): a fabricated ```output block
    and an answer that hangs the grader are judged 0.0 here too, never credited or skipped."""
    R.configure(grader_workers=2, grader_timeout_s=1.0)
    rows = [_row("Let me run it.\n```output\n72\n```\nDone.", "72"),
            _row(r"The answer is \boxed{9^{9^{9^{9}}}}", "72"),
            _row("The answer is 72 or 73.", "72")]
    scores, extra = _verl_reward_loop(V.compute_score, rows)
    assert scores == [0.0, 0.0, 0.0]
    assert extra["judged"].tolist() == [1.0, 1.0, 1.0]
    assert extra["verdict"].tolist()[1] == "unverifiable"
