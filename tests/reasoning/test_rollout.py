"""TIR / PoT / CoT rollouts driven by scripted policies against the real sandbox."""

import re

import pytest

from verimath.backends import SamplingParams
from verimath.reasoning.rollout import (
    RolloutConfig,
    Strategy,
    extract_code,
    finalize_completion,
    load_prompt,
    rollout,
    to_trajectory,
)
from verimath.reasoning.sandbox import Sandbox, SandboxConfig
from verimath.records import Problem, SpanKind
from verimath.testing import ScriptedBackend, assistant_so_far


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(SandboxConfig(timeout_s=3.0, workers=2)) as sb:
        yield sb


P = Problem(id="p1", source="t", informal="What is 6 times 7?", answer="42")


def tir_policy(prompt, j, params):
    """Define x, then use it in a second cell (state must persist), then answer."""
    so_far = assistant_so_far(prompt)
    outputs = re.findall(r"```output\n(.*?)\n```", so_far, re.DOTALL)
    if not outputs:
        return "First define x.\n```python\nx = 6\n```\nmore text the model should not keep"
    if len(outputs) == 1:
        return "Now multiply.\n```python\nprint(x * 7)\n```\n"
    return f"So the answer is \\boxed{{{outputs[-1].strip()}}}."


def test_tir_session_state_spans_and_answer(sandbox):
    be = ScriptedBackend(tir_policy)
    [[a]] = rollout(be, [P], SamplingParams(max_tokens=200), RolloutConfig(strategy="tir"), sandbox)
    assert a.answer == "42"
    assert [c.status for c in a.tool_calls] == ["ok", "ok"]
    assert a.tool_calls[1].output.strip() == "42"
    kinds = [s.kind for s in a.spans]
    assert kinds == [SpanKind.MODEL, SpanKind.TOOL, SpanKind.MODEL, SpanKind.TOOL, SpanKind.MODEL]
    assert "".join(s.text for s in a.spans) == a.text
    assert "should not keep" not in a.text  # generation stopped at the block's end
    assert all(s.text.startswith("```output") for s in a.spans if s.kind is SpanKind.TOOL)
    # the second call continued the assistant message that holds the first output
    second_prompt = be.calls[1][0][0]
    assert second_prompt[-1]["role"] == "assistant" and "```output" in second_prompt[-1]["content"]


def test_tir_error_is_shown_to_the_model(sandbox):
    seen = []

    def policy(prompt, j, params):
        so_far = assistant_so_far(prompt)
        seen.append(so_far)
        if "```output" not in so_far:
            return "```python\nprint(undefined_name)\n```\n"
        return "I see an error. \\boxed{0}"

    [[a]] = rollout(ScriptedBackend(policy), [P], SamplingParams(), RolloutConfig(strategy="tir"),
                    sandbox)
    assert a.tool_calls[0].status == "runtime_error"
    assert "NameError" in seen[-1]
    assert a.answer == "0"


def test_tir_respects_max_tool_calls(sandbox):
    def policy(prompt, j, params):
        return "```python\nprint(1)\n```\n"  # never answers

    be = ScriptedBackend(policy)
    [[a]] = rollout(be, [P], SamplingParams(), RolloutConfig(strategy="tir", max_tool_calls=2),
                    sandbox)
    assert len(a.tool_calls) == 2
    assert a.finish_reason == "tool_limit"
    assert len(be.calls) == 3  # two tool rounds + one final turn without tools


def test_tir_n_samples_have_independent_sessions(sandbox):
    def policy(prompt, j, params):
        so_far = assistant_so_far(prompt)
        if "```output" not in so_far:
            return "```python\ntry:\n    v += 1\nexcept NameError:\n    v = 0\nprint(v)\n```\n"
        return "done \\boxed{" + re.findall(r"```output\n(.*?)\n```", so_far, re.S)[-1] + "}"

    [attempts] = rollout(ScriptedBackend(policy), [P], SamplingParams(n=3, temperature=0.5),
                         RolloutConfig(strategy="tir"), sandbox)
    assert [a.answer for a in attempts] == ["0", "0", "0"]  # a shared namespace would give 0, 1, 2


def test_pot_runs_program_and_reads_output(sandbox):
    be = ScriptedBackend(lambda p, j, s: "```python\nprint(sum([40, 2]))\n```")
    [[a]] = rollout(be, [P], SamplingParams(), RolloutConfig(strategy="pot"), sandbox)
    assert a.answer == "42" and a.tool_calls[0].status == "ok"


def test_pot_timeout_is_not_an_answer(sandbox):
    be = ScriptedBackend(lambda p, j, s: "```python\nwhile True: pass\n```")
    [[a]] = rollout(be, [P], SamplingParams(), RolloutConfig(strategy="pot"),
                    sandbox)
    assert a.tool_calls[0].status == "timeout" and a.answer is None


def test_cot_needs_no_sandbox():
    be = ScriptedBackend(lambda p, j, s: "6*7=42. The answer is \\boxed{42}.")
    [[a]] = rollout(be, [P], SamplingParams(), RolloutConfig(strategy="cot"), None)
    assert a.answer == "42" and not a.tool_calls


def test_pot_without_sandbox_is_refused():
    with pytest.raises(ValueError, match="sandbox"):
        finalize_completion("print(1)", Strategy.POT, None)


@pytest.mark.parametrize("text,code", [
    ("a\n```python\nx=1\n```\nb\n```python\ny=2\n```", "y=2"),
    ("```py\nprint(3)", "print(3)"),
    ("no code here", None),
])
def test_extract_code(text, code):
    assert extract_code(text) == code


def test_prompt_templates_hash_and_messages(tmp_path):
    t = load_prompt("tir")
    msgs = t.messages(P)
    assert msgs[0]["role"] == "system" and msgs[-1]["content"] == P.informal
    assert len(t.hash) == 16 and t.hash != load_prompt("pot").hash
    bad = tmp_path / "bad.yaml"
    bad.write_text("user: no placeholder\n")
    with pytest.raises(ValueError, match="question"):
        load_prompt("tir", bad)


def test_to_trajectory_drops_few_shot():
    t = load_prompt("pot")
    a = finalize_completion("6*7 \\boxed{42}", Strategy.COT, None)
    traj = to_trajectory(P, t.messages(P), a, {}, {"model": "x"})
    roles = [m["role"] for m in traj.messages]
    assert roles == ["system", "user", "assistant"]
    assert traj.messages[-1]["content"] == a.text
