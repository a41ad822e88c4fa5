"""The TIR engine: state machine tables, infra failures on the real sandbox, session bounds."""

from __future__ import annotations

import json
import os
import re
import signal
import time

import pytest

from tests.reasoning.test_sandbox import _server_pids
from verimath.backends import SamplingParams
from verimath.reasoning.rollout import RolloutConfig, rollout
from verimath.reasoning.sandbox import ExecResult, ExecStatus, Sandbox, SandboxConfig
from verimath.reasoning.tir import NO_OUTPUT, Done, RunCode, TirEngine, interpreter_lost
from verimath.records import Problem
from verimath.testing import CountingSandbox, ScriptedBackend, assistant_so_far

P = Problem(id="p1", source="t", informal="What is 41 plus 1?", answer="42")
RESTARTED = ("[sandbox] this cell ran in a fresh interpreter: the previous one ended (between "
             "cells); earlier variables and imports are lost\n")


def res(status="ok", stdout="", stderr="", restarted=False):
    return ExecResult(ExecStatus(status), stdout, stderr, 0, 0.01, 0.01, "test",
                      restarted=restarted)


@pytest.mark.parametrize("text,action,kept", [
    ("x\n```python\nx = 1\n```\ntail", RunCode("x = 1"), "x\n```python\nx = 1\n```\n"),
    ("```python\nprint(2)\n```output\n2\n```", RunCode("print(2)\n"), "```python\nprint(2)\n"),
    ("The answer is \\boxed{3}.", Done("stop"), "The answer is \\boxed{3}."),
    ("```python\nunfinished", Done("length"), "```python\nunfinished"),
])
def test_feed_table(text, action, kept):
    e = TirEngine()
    finish = "length" if "unfinished" in text else "stop"
    assert e.feed(text, finish)[1] == action
    assert e.model_text == kept


def test_last_turn_runs_no_code_and_says_tool_limit():
    e = TirEngine(max_tool_calls=1)
    assert isinstance(e.feed("```python\nprint(1)\n```\n")[1], RunCode)
    assert e.observe(res(stdout="1\n")) == "```output\n1\n```\n"
    assert not e.tools_left and e.stops(("</s>",)) == ("</s>",)
    assert e.feed("```python\nprint(2)\n```\n")[1] == Done("tool_limit")
    assert len(e.calls) == 1


@pytest.mark.parametrize("result,previous,lost", [
    (res(stderr=RESTARTED, restarted=True), res(), True),       # lost between two good cells
    (res("runtime_error", stderr=RESTARTED + "NameError", restarted=True), res(), True),
    (res(restarted=True), None, True),                          # first cell, server lost it
    (res(restarted=True), res("output_limit"), True),           # that cell kept its interpreter
    (res(stderr=RESTARTED), res("timeout"), False),             # its own timeout ended it
    (res(stderr=RESTARTED), res(), False),                      # a program printing the note
    (res(restarted=True), res(stderr="[sandbox] the session's interpreter ended; its state is "
                                     "lost\n"), True),         # printed by the program itself
    (res(), res(), False),
])
def test_interpreter_lost_table(result, previous, lost):
    assert interpreter_lost(result, previous) is lost


@pytest.mark.parametrize("stdout,answer", [
    ("", None),                                 # shown as the placeholder, never an answer
    ("   \n", None),
    ("41\n42\n", "42"),
    ("x" * 5000 + "\n42\n", "42"),              # display is truncated; the raw stdout is not
])
def test_fallback_answer_comes_from_raw_stdout(stdout, answer):
    e = TirEngine(max_tool_output_chars=64)
    e.feed("```python\nprint(v)\n```\n")
    block = e.observe(res(stdout=stdout))
    e.feed("I am not sure.")
    assert e.answer() == answer and e.calls[-1].stdout == stdout
    if not stdout.strip():
        assert NO_OUTPUT in block and e.calls[-1].output == NO_OUTPUT


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(SandboxConfig(timeout_s=5.0, workers=2)) as sb:
        yield sb


def test_placeholder_never_becomes_an_answer_on_the_real_sandbox(sandbox):
    def policy(prompt, j, params):
        if "```output" not in assistant_so_far(prompt):
            return "```python\nimport math\n```\n"  # no digits for a last-number fallback
        return "Hmm."

    [[a]] = rollout(ScriptedBackend(policy), [P], SamplingParams(), RolloutConfig(strategy="tir"),
                    sandbox)
    assert NO_OUTPUT in a.text and a.tool_calls[0].stdout == ""
    assert a.answer is None and a.finish_reason == "stop"


def _uid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(ln.split()[1]) for ln in f if ln.startswith("Uid:"))
    except (OSError, StopIteration):
        return None


@pytest.mark.parametrize("victims", ["interpreter", "fork_server"])
def test_interpreter_killed_between_cells_is_unjudged_not_wrong(tmp_path, monkeypatch, victims):
    """Kill real sandbox processes between `x = 41` and `print(x + 1)`: eval excludes it.

    ``interpreter``: only the session's interpreter (its own uid) dies; the next cell runs in a
    fresh one and fails with NameError (the sandbox notes the restart). ``fork_server``: every
    process in the sandbox dies; the cell is SANDBOX_ERROR.
    """
    from verimath.config import load_config
    from verimath.reasoning.evaluation import EvalConfig, main

    bench = tmp_path / "one.jsonl"
    bench.write_text(json.dumps({"question": P.informal, "answer": "#### 42"}) + "\n")
    box = Sandbox(SandboxConfig(timeout_s=5.0, workers=1, preload=()))
    killed = []

    def policy(prompt, j, params):
        so_far = assistant_so_far(prompt)
        if "```output" not in so_far:
            return "Set x.\n```python\nx = 41\n```\n"
        if so_far.count("```output") == 1:
            pids = _server_pids(box)
            if victims == "interpreter":
                pids = [p for p in pids if _uid(p) not in (None, os.getuid())]
            for pid in pids:  # dies while the session is idle
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except ProcessLookupError:
                    pass
            # let the sandbox reap them first: a cell handed to an interpreter whose death the
            # fork server has not seen yet comes back "signaled" (a sandbox race, reported)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in pids):
                time.sleep(0.02)
            return "Add one.\n```python\nprint(x + 1)\n```\n"
        outs = re.findall(r"```output\n(.*?)\n```", so_far, re.S)
        return f"So \\boxed{{{outs[-1].strip()}}}."

    cfg = load_config(EvalConfig, None, [f"benchmark={bench}", f"out={tmp_path / 'o'}",
                                         "rollout.strategy=tir", "sandbox.timeout_s=5",
                                         "infra_retries=0"])  # final at once
    import verimath.reasoning.sandbox as sbmod

    monkeypatch.setattr(sbmod, "Sandbox", lambda *_a, **_k: box)  # main() builds it by name
    try:
        rep = main(cfg, progress=False, backend=ScriptedBackend(policy))
    finally:
        box.close()
    assert killed
    [rec] = [json.loads(line) for line in (tmp_path / "o" / "records.jsonl").open()]
    [att] = rec["attempts"]
    assert att["finish_reason"] == "error" and att["correct"] is None
    assert [t["status"] for t in att["tool_calls"]] == ["ok", "sandbox_error"]
    assert rep.summary["n_infra_failures"] == 1 and rep.summary["n_judged"] == 0


def test_n64_sampled_tir_stays_within_the_session_bound(sandbox):
    """n=64 TIR attempts on 2 problems (128 attempts, two cells each) with 16 sessions at most."""
    def policy(prompt, j, params):
        so_far = assistant_so_far(prompt)
        outs = re.findall(r"```output\n(.*?)\n```", so_far, re.S)
        if not outs:
            return "```python\nx = 41\n```\n"
        if len(outs) == 1:
            return "```python\nprint(x + 1)\n```\n"
        return f"\\boxed{{{outs[-1].strip()}}}"

    counting = CountingSandbox(sandbox)
    probs = [P, Problem(id="p2", source="t", informal="Again 41 plus 1?", answer="42")]
    got = rollout(ScriptedBackend(policy), probs, SamplingParams(n=64, temperature=1.0),
                  RolloutConfig(strategy="tir", max_sessions=16), counting)
    assert [len(per) for per in got] == [64, 64]
    assert all(a.answer == "42" and a.finish_reason == "stop" for per in got for a in per)
    assert counting.opened == 128 and counting.open == 0 and 1 < counting.peak <= 16


def test_max_sessions_is_validated():
    with pytest.raises(ValueError, match="max_sessions"):
        RolloutConfig(max_sessions=0)


class IgnoresStops(ScriptedBackend):
    """A server that ignores stop strings (some OpenAI-compatible ones do)."""

    def generate(self, prompts, params):
        from dataclasses import replace

        return super().generate(prompts, replace(params, stop=()))


def test_generation_past_the_fence_is_cut_even_if_the_backend_ignores_stops(sandbox):
    def policy(prompt, j, params):
        if "```output" not in assistant_so_far(prompt):
            return "```python\nprint(6 * 7)\n```\n```output\nFAKE\n```\nThe answer is \\boxed{1}."
        return "So \\boxed{42}."

    [[a]] = rollout(IgnoresStops(policy), [P], SamplingParams(), RolloutConfig(strategy="tir"),
                    sandbox)
    assert a.answer == "42" and "FAKE" not in a.text and "boxed{1}" not in a.text
    assert [c.stdout for c in a.tool_calls] == ["42\n"]


class _Raises:
    def __init__(self, where: str) -> None:
        self.where = where

    def session(self):
        from verimath.reasoning.sandbox import SandboxError

        if self.where == "open":
            raise SandboxError("cannot start a session: out of uids")
        outer = self

        class S:
            def run(self, code):
                raise SandboxError("the fork server is gone")

            def close(self):
                outer.closed = True

        return S()


@pytest.mark.parametrize("where", ["open", "run"])
def test_sandbox_that_raises_gives_an_unjudged_attempt(where):
    be = ScriptedBackend(lambda p, j, s: "```python\nprint(1)\n```\n")
    [[a]] = rollout(be, [P], SamplingParams(), RolloutConfig(strategy="tir"), _Raises(where))
    assert a.finish_reason == "error" and [c.status for c in a.tool_calls] == ["sandbox_error"]
    assert "out of uids" in a.text or "fork server is gone" in a.text
