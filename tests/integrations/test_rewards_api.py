"""verimath.rewards: TRL's reward signature over one lazily started, shared, per-process grader."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import subprocess
import sys
import time

import pytest

from verimath import rewards as R
from verimath.reasoning.grading import GraderUnavailable

pytestmark = pytest.mark.timeout(120)


def _msg(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


@pytest.fixture(autouse=True)
def _fresh():
    R.configure(grader_workers=2, grader_timeout_s=10.0)
    yield
    R.close()


@pytest.mark.parametrize("gold,completion,expected", [
    (r"\frac{1}{3}", r"My answer is \boxed{\frac{1}{3}}", 1.0),  # TRL's own docstring rows
    (r"\frac{1}{3}", r"My answer is \boxed{\frac{1}{2}}", 0.0),
    (r"\frac{4}{3}", r"so \boxed{\frac43}", 1.0),  # TRL's reward gives these 0.0 (benchmark)
    (r"11\sqrt{2}", r"\boxed{11\sqrt2}", 1.0),
    ("Natalia sold 48/2 = 24 clips in May.\n#### 72", "24 + 48 = 72. The answer is 72", 1.0),
    ("72", "I do not know", 0.0),
    (None, r"\boxed{1}", None),  # no gold: cannot judge
])
def test_accuracy_reward_table(gold, completion, expected):
    assert R.accuracy_reward([_msg(completion)], solution=[gold]) == [expected]
    assert R.accuracy_reward([completion], answer=[gold]) == [expected]  # our column, plain str


def test_trl_keywords_logging_and_errors():
    extra: dict[str, list] = {}
    metrics: dict[str, float] = {}
    out = R.accuracy_reward(
        prompts=["p"] * 3, completions=[_msg(r"\boxed{2}"), _msg(r"\boxed{3}"), _msg("x")],
        completion_ids=[[1]] * 3, solution=["2", "2", None], trainer_state=None,
        log_extra=lambda k, v: extra.__setitem__(k, v),
        log_metric=lambda k, v: metrics.__setitem__(k, v))
    assert out == [1.0, 0.0, None]
    assert extra["accuracy_reward_verdict"] == ["correct", "wrong", "could not judge"]
    assert metrics["rewards/accuracy_reward/infra_failure_rate"] == pytest.approx(1 / 3)
    with pytest.raises(TypeError, match="'solution'"):
        R.accuracy_reward([_msg("1")], gold=["1"])
    with pytest.raises(ValueError, match="2 completions but 1 gold"):
        R.accuracy_reward([_msg("1"), _msg("2")], solution=["1"])
    with pytest.raises(TypeError, match="unknown reward settings"):
        R.configure(grader_wrokers=2)
    with pytest.raises(ValueError, match="grader_workers"):
        R.configure(grader_workers=0)


def test_infrastructure_failure_is_none_never_a_score(monkeypatch):
    class DeadGrader:
        def grade(self, gold, pred, *, extract=True):
            raise GraderUnavailable("worker exited")

    R.accuracy_reward(["1"], solution=["1"])
    monkeypatch.setitem(R._SHARED.members, "grader", DeadGrader())
    assert R.accuracy_reward(["1", "2"], solution=["1", "1"]) == [None, None]


def test_pot_reward_runs_the_program_and_format_rewards():
    progs = ["```python\nprint(6 * 7)\n```", "```python\nprint(41)\n```",
             "```python\nwhile True:\n    pass\n```", "no program"]
    R.configure(sandbox_timeout_s=2.0)
    assert R.pot_reward(progs, solution=["42"] * 4) == [1.0, 0.0, 0.0, 0.0]
    assert R.pot_format_reward(progs) == [1.0, 1.0, 0.0, 0.0]
    assert R.format_reward([r"\boxed{1}", "1"]) == [1.0, 0.0]
    assert R.tir_format_reward(["```python\nprint(1)\n```\n\\boxed{1}", "```python\nx\n\\boxed{1}"]
                               ) == [1.0, 0.0]


def test_async_twins_are_gathered_like_trl_does():
    from trl.trainer.utils import is_async_callable

    assert is_async_callable(R.accuracy_reward_async) and not is_async_callable(R.accuracy_reward)
    comps = [_msg(r"\boxed{5}"), _msg(r"\boxed{6}")]

    async def both():
        return await asyncio.gather(R.accuracy_reward_async(comps, solution=["5", "5"]),
                                    R.tir_reward_async(comps, solution=["6", "6"]))

    assert asyncio.run(both()) == [[1.0, 0.0], [0.0, 1.0]]


def test_one_grader_per_process_reused_closed_and_restarted():
    R.accuracy_reward(["1"], solution=["1"])
    grader = R._SHARED.members["grader"]
    pids = grader.worker_pids()
    assert len(pids) == 2
    R.accuracy_reward(["2"], solution=["2"])
    assert R._SHARED.members["grader"] is grader and grader.worker_pids() == pids
    R.close()
    assert grader.worker_pids() == []
    assert R.accuracy_reward(["3"], solution=["3"]) == [1.0]
    assert R._SHARED.members["grader"] is not grader


def _child(q):
    try:
        out = R.accuracy_reward(["7"], solution=["7"])
        q.put((out, R._SHARED.members["grader"].worker_pids()))
    except BaseException as e:  # report, do not hang the parent
        q.put((repr(e), []))


def test_forked_child_starts_its_own_grader_and_leaves_the_parents_alone():
    R.accuracy_reward(["1"], solution=["1"])
    parent_pids = R._SHARED.members["grader"].worker_pids()
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q,))
    p.start()
    out, child_pids = q.get(timeout=90)
    p.join(60)
    assert out == [1.0]
    assert child_pids and not set(child_pids) & set(parent_pids)
    assert R._SHARED.members["grader"].worker_pids() == parent_pids  # still alive
    assert R.accuracy_reward(["2"], solution=["2"]) == [1.0]


def test_workers_are_gone_after_interpreter_exit():
    code = ("from verimath.rewards import accuracy_reward, _SHARED\n"
            "assert accuracy_reward(['1'], solution=['1']) == [1.0]\n"
            "print(*_SHARED.members['grader'].worker_pids())\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=90)
    assert res.returncode == 0, res.stderr
    pids = [int(p) for p in res.stdout.split()]
    assert len(pids) == 2
    for _ in range(50):
        alive = [p for p in pids if _alive(p)]
        if not alive:
            break
        time.sleep(0.1)
    assert not alive


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (reparented to an init that has not reaped yet) is dead
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
