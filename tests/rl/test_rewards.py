"""Reward functions, table-tested: verdict -> reward, None on infrastructure failures."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from verimath.records import Verdict
from verimath.records import VerdictStatus as S
from verimath.rl.concurrency import map_with_deadline
from verimath.rl.rewards import (
    AnswerReward,
    FormatReward,
    ProofReward,
    RewardSpec,
    ToolUseReward,
    VerifierPool,
    build_rewards,
    completion_text,
    verdict_reward,
)


class FakeGrader:
    """Exact-match grader with scripted infrastructure failures keyed by the prediction."""

    FAIL = {"<timeout>": S.TIMEOUT, "<error>": S.ERROR}

    def __init__(self, hang_on: str | None = None) -> None:
        self.hang_on = hang_on
        self.calls: list[tuple[str | None, str | None, bool]] = []
        self.release = threading.Event()

    def grade(self, gold, pred, *, extract=True):
        self.calls.append((gold, pred, extract))
        if self.hang_on is not None and self.hang_on in (pred or ""):
            self.release.wait(10)
        if gold == "<bad>":
            return Verdict(S.BAD_GOLD)
        for marker, status in self.FAIL.items():
            if marker in (pred or ""):
                return Verdict(status)
        if extract:
            from verimath.reasoning.extract import extract_answer

            pred = extract_answer(pred or "")
        if not pred:
            return Verdict(S.NO_ANSWER)
        return Verdict(S.CORRECT if pred.strip() == gold else S.WRONG)


@pytest.mark.parametrize("status,expected", [
    (S.CORRECT, 1.0), (S.WRONG, 0.0), (S.NO_ANSWER, 0.0),
    (S.BAD_GOLD, None), (S.TIMEOUT, None), (S.ERROR, None),
])
def test_verdict_reward_table(status, expected):
    assert verdict_reward(Verdict(status)) == expected
    assert verdict_reward(None) is None


@pytest.mark.parametrize("completion,gold,expected", [
    ("3 + 4 = 7. The answer is \\boxed{7}.", "7", 1.0),
    ("The answer is \\boxed{8}.", "7", 0.0),
    ("I do not know.", "7", 0.0),                       # no answer: judged, wrong
    ("\\boxed{7} <timeout>", "7", None),                # grader timeout: skipped
    ("\\boxed{7} <error>", "7", None),                  # grader worker died: skipped
    ("\\boxed{7}", "<bad>", None),                      # unusable gold: skipped
    ("\\boxed{7}", None, None),                         # no gold at all: skipped
    ([{"role": "assistant", "content": "so \\boxed{7}"}], "7", 1.0),  # conversational
])
def test_answer_reward_cot(completion, gold, expected):
    fn = AnswerReward(VerifierPool(grader=FakeGrader()), strategy="cot")
    assert fn([completion], answer=[gold]) == [expected]


def test_answer_reward_ignores_tool_messages_and_logs_failure_rate():
    logged = {}
    fn = AnswerReward(VerifierPool(grader=FakeGrader()), strategy="cot")
    conv = [{"role": "assistant", "content": "Let me run it."},
            {"role": "tool", "name": "python", "content": "\\boxed{9}"},
            {"role": "assistant", "content": "The answer is \\boxed{7}."}]
    out = fn([conv, "\\boxed{7} <timeout>"], answer=["7", "7"],
             log_metric=lambda k, v: logged.__setitem__(k, v))
    assert out == [1.0, None]
    assert logged == {"rewards/answer/infra_failure_rate": 0.5}
    assert completion_text(conv) == "Let me run it.\\boxed{9}The answer is \\boxed{7}."


def test_answer_reward_tir_columns():
    g = FakeGrader()
    fn = AnswerReward(VerifierPool(grader=g), strategy="tir")
    out = fn(["a", "b", "c"], answer=["7", "7", "7"], tir_answer=["7", None, "7"],
             tir_error=[False, False, True])
    assert out == [1.0, 0.0, None]
    assert all(extract is False for _, _, extract in g.calls)


def test_answer_reward_hung_sample_is_timed_out_not_scored():
    g = FakeGrader(hang_on="<hang>")
    fn = AnswerReward(VerifierPool(grader=g, workers=4, item_timeout_s=0.5), strategy="cot")
    t0 = time.monotonic()
    out = fn(["\\boxed{7}", "\\boxed{7} <hang>", "\\boxed{8}"], answer=["7"] * 3)
    g.release.set()
    assert out == [1.0, None, 0.0]
    assert time.monotonic() - t0 < 3.0


def test_answer_reward_runs_a_batch_concurrently():
    class Slow(FakeGrader):
        def grade(self, gold, pred, *, extract=True):
            time.sleep(0.2)
            return super().grade(gold, pred, extract=extract)

    fn = AnswerReward(VerifierPool(grader=Slow(), workers=8, item_timeout_s=10), strategy="cot")
    t0 = time.monotonic()
    assert fn(["\\boxed{1}"] * 8, answer=["1"] * 8) == [1.0] * 8
    assert time.monotonic() - t0 < 0.2 * 8 / 2  # well under the serial time


class FakeChecker:
    def __init__(self) -> None:
        self.tasks = []

    def check(self, task):
        self.tasks.append(task)
        if "sorry" in task.proof:
            return Verdict(S.WRONG, "uses sorry")
        if "slow" in task.proof:
            return Verdict(S.TIMEOUT, "lean timed out")
        if "crash" in task.proof:
            return Verdict(S.ERROR, "lean crashed")
        return Verdict(S.CORRECT)


@pytest.mark.parametrize("completion,stmt,expected", [
    ("```lean4\ntheorem t : 1 = 1 := by rfl\n```", "theorem t : 1 = 1 := by", 1.0),
    ("```lean4\ntheorem t : 1 = 1 := by sorry\n```", "theorem t : 1 = 1 := by", 0.0),
    ("no lean here", "theorem t : 1 = 1 := by", 0.0),
    ("```lean4\nslow\n```", "theorem t : 1 = 1 := by", None),   # Lean timeout
    ("```lean4\ncrash\n```", "theorem t : 1 = 1 := by", None),  # dead Lean process
    ("```lean4\nrfl\n```", None, None),                          # informal row: n/a
])
def test_proof_reward(completion, stmt, expected):
    checker = FakeChecker()
    fn = ProofReward(VerifierPool(checker=checker))
    assert fn([completion], formal_statement=[stmt], header=["import Mathlib"]) == [expected]
    if checker.tasks:
        assert checker.tasks[0].header == "import Mathlib"


@pytest.mark.parametrize("strategy,text,expected", [
    ("cot", "so \\boxed{3}", 1.0),
    ("cot", "so 3", 0.0),
    ("pot", "```python\nprint(1 + 2)\n```", 1.0),
    ("pot", "```python\nx = 1 + 2\n```", 0.0),
    ("tir", "```python\nprint(3)\n```\n```output\n3\n```\nSo \\boxed{3}", 1.0),
    ("tir", "```python\nprint(3)\nSo \\boxed{3}", 0.0),
    ("proof", "```lean4\nby simp\n```", 1.0),
])
def test_format_reward(strategy, text, expected):
    assert FormatReward(strategy=strategy)([text]) == [expected]


@pytest.mark.parametrize("statuses,expected", [
    (["ok", "ok"], 1.0), (["ok", "runtime_error"], 0.5), ([], 0.0),
    (["ok", "sandbox_error"], None),
])
def test_tool_use_reward(statuses, expected):
    assert ToolUseReward()(["x"], tool_statuses=[statuses]) == [expected]


def test_tool_use_reward_reads_environments():
    class Env:
        statuses = ["ok", "timeout"]

    assert ToolUseReward()(["x"], environments=[Env()]) == [0.5]


def test_registry_builds_only_requested_and_checks_verifiers():
    pool = VerifierPool(grader=FakeGrader())
    funcs, weights, is_ver = build_rewards(
        [RewardSpec("answer", 1.0), RewardSpec("format", 0.1)], pool, "cot")
    assert [f.__name__ for f in funcs] == ["answer", "format"]
    assert weights == [1.0, 0.1] and is_ver == [True, False]
    with pytest.raises(ValueError, match="checker"):
        build_rewards([RewardSpec("proof")], pool, "proof")
    with pytest.raises(ValueError, match="sandbox"):
        build_rewards([RewardSpec("answer")], pool, "pot")
    with pytest.raises(ValueError, match="unknown reward"):
        RewardSpec("bogus")


def test_map_with_deadline_reports_errors_and_timeouts():
    def fn(x):
        if x == "boom":
            raise RuntimeError("broken tool")
        if x == "hang":
            time.sleep(2)
        return x.upper()

    outs = map_with_deadline(fn, ["a", "boom", "hang"], workers=3, item_timeout_s=0.3)
    assert outs[0].ok and outs[0].value == "A"
    assert not outs[1].ok and "broken tool" in outs[1].error
    assert outs[2].timed_out and outs[2].value is None


STMT = "theorem t1 (x : ℕ) : x + 0 = x := by"


@pytest.mark.parametrize("completion,expected", [
    (f"```lean4\n{STMT}\n  simp\n```", 1.0),                 # accepted proof
    (f"```lean4\n{STMT}\n  sorry\n```", 0.0),                # real audit rejects sorry
    # a restated (changed) statement is discarded: the body is judged against the given one
    ("```lean4\ntheorem t1 (x : ℕ) : x = x := by\n  rfl\n```", 0.0),
    ("```lean4\ntheorem t1 (x : ℕ) : x = x := by\n  simp\n```", 1.0),
    ("I cannot prove it.", 0.0),                              # no lean block
])
def test_proof_reward_with_the_prover_scripted_checker(completion, expected):
    from verimath.prover.scripted import ScriptedChecker

    fn = ProofReward(VerifierPool(checker=ScriptedChecker({"t1": ["simp"]})))
    assert fn([completion], formal_statement=[STMT], header=["import Mathlib"]) == [expected]


def test_proof_reward_dead_lean_is_skipped():
    from verimath.prover.scripted import ScriptedChecker

    fn = ProofReward(VerifierPool(checker=ScriptedChecker(judge=lambda t: S.ERROR)))
    assert fn([f"```lean4\n{STMT}\n  simp\n```"], formal_statement=[STMT]) == [None]


def test_proof_reward_a_proof_that_runs_lean_out_of_time_is_zero():
    from verimath.prover.scripted import ScriptedChecker

    fn = ProofReward(VerifierPool(checker=ScriptedChecker(judge=lambda t: S.TIMEOUT)))
    assert fn([f"```lean4\n{STMT}\n  simp\n```"], formal_statement=[STMT]) == [0.0]


def test_answer_reward_pot_runs_programs_in_the_sandbox():
    from verimath.reasoning.sandbox import Sandbox, SandboxConfig

    with Sandbox(SandboxConfig(timeout_s=3.0, memory_mb=512, workers=2)) as sb:
        fn = AnswerReward(VerifierPool(grader=FakeGrader(), sandbox=sb, workers=4), "pot")
        out = fn(["```python\nprint(6 * 7)\n```",            # prints the gold
                  "```python\nprint(6 * 8)\n```",            # prints a wrong value
                  "```python\nraise ValueError('x')\n```",   # the program's fault: wrong
                  "```python\nwhile True: pass\n```"],       # program timeout: wrong, judged
                 answer=["42"] * 4)
    assert out == [1.0, 0.0, 0.0, 0.0]


def test_answer_reward_pot_sandbox_failure_is_none():
    from verimath.reasoning.sandbox import ExecResult, ExecStatus

    class DeadSandbox:
        def run(self, code, **_):
            return ExecResult(ExecStatus.SANDBOX_ERROR, "", "fork server died", None, 0.0, 0.0,
                              "none")

    fn = AnswerReward(VerifierPool(grader=FakeGrader(), sandbox=DeadSandbox()), "pot")
    assert fn(["```python\nprint(42)\n```"], answer=["42"]) == [None]


# -- only known infrastructure failures become None; bugs raise -----------------------------


def test_answer_reward_an_answer_that_hangs_the_real_grader_is_zero():
    from verimath.reasoning.grading import Grader, GraderConfig

    hang = r"\boxed{9^{9^{9^9}}}"  # the worker hangs in a C big-integer power, on every try
    with Grader(GraderConfig(timeout_s=1.0, workers=1)) as g:
        fn = AnswerReward(VerifierPool(grader=g, workers=2), strategy="cot")
        assert fn([hang, r"\boxed{7}"], answer=["5", "7"]) == [0.0, 1.0]


def test_answer_reward_with_a_dead_grader_is_none(monkeypatch):
    import os
    import signal

    import verimath.reasoning.grading as grading
    from verimath.reasoning.grading import Grader, GraderConfig

    g = Grader(GraderConfig(workers=1))
    try:
        for pid in g.worker_pids():  # the worker is killed from outside ...
            os.kill(pid, signal.SIGKILL)

        def cannot_fork(cfg):
            raise OSError(11, "Resource temporarily unavailable")  # ... and none can start

        monkeypatch.setattr(grading, "_Worker", cannot_fork)
        fn = AnswerReward(VerifierPool(grader=g), strategy="cot")
        assert fn([r"\boxed{0.5}"], answer=[r"\frac{1}{2}"]) == [None]  # needs a worker
    finally:
        g.close()


def test_answer_reward_with_a_closed_grader_raises():
    from verimath.reasoning.grading import Grader, GraderClosed, GraderConfig

    g = Grader(GraderConfig(workers=1))
    g.close()  # using a grader after close() is a caller bug, not could-not-judge
    fn = AnswerReward(VerifierPool(grader=g), strategy="cot")
    with pytest.raises(GraderClosed):
        fn([r"\boxed{0.5}"], answer=[r"\frac{1}{2}"])


@pytest.mark.parametrize("exc", ["LeanTimeout", "LeanCrash", "LeanUnavailable"])
def test_proof_reward_lean_infra_errors_are_none(exc):
    import verimath.prover.types as pt

    class Dying:
        def check(self, task):
            raise getattr(pt, exc)("lean went away")

    fn = ProofReward(VerifierPool(checker=Dying()))
    assert fn([f"```lean4\n{STMT}\n  simp\n```"], formal_statement=[STMT]) == [None]


def test_a_code_bug_inside_a_reward_raises():
    class Buggy(FakeGrader):
        def grade(self, gold, pred, *, extract=True):
            return {"status": "correct"}["verdict"]  # KeyError: a bug, not an infra failure

    fn = AnswerReward(VerifierPool(grader=Buggy()), strategy="cot")
    with pytest.raises(KeyError):
        fn([r"\boxed{7}"], answer=["7"])


def test_a_reward_fed_a_wrong_column_raises():
    from verimath.prover.scripted import ScriptedChecker

    fn = ProofReward(VerifierPool(checker=ScriptedChecker({"t1": ["simp"]})))
    wrong = [{"name": "t1", "statement": STMT}]  # a record where a statement string belongs
    with pytest.raises((TypeError, AttributeError, KeyError)):
        fn([f"```lean4\n{STMT}\n  simp\n```"], formal_statement=wrong)
    with pytest.raises(TypeError):  # a column under the wrong name
        AnswerReward(VerifierPool(grader=FakeGrader()))([r"\boxed{7}"], solution=["7"])


def test_infra_failure_watch_stops_after_n_all_unjudged_steps():
    from verimath.rl.trainer import InfraFailureWatch, RewardInfraFailure

    nan = float("nan")
    watch = InfraFailureWatch(["answer", "format"], max_steps=2)
    watch.update(torch.tensor([[nan, 1.0], [nan, 0.0]]))
    watch.update(torch.tensor([[1.0, 1.0], [nan, 0.0]]))  # one judged sample resets the streak
    watch.update(torch.tensor([[nan, 1.0], [nan, 0.0]]))
    with pytest.raises(RewardInfraFailure, match="'answer' could not judge any sample for 2"):
        watch.update(torch.tensor([[nan, 1.0], [nan, 0.0]]))
    never = InfraFailureWatch(["answer"], max_steps=0)
    for _ in range(5):
        never.update(torch.tensor([[nan]]))
