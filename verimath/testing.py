"""Test doubles shared by the test suites of every package (no model, no network).

:class:`ScriptedBackend` implements the :class:`verimath.backends.Backend` protocol with a
policy function instead of a model. It honours the parts of the contract that rollouts rely
on: ``n`` completions per prompt, stop strings (the text is cut at the stop string that
completes first, as the real backends do; it is excluded and reported in ``stop_reason``),
``max_tokens`` (counted in whitespace tokens), and chat continuation (a final assistant
message is the text so far).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from verimath.backends import Completion, SamplingParams
from verimath.backends.base import find_stop

Prompt = str | list[dict[str, str]]
#: policy(prompt, sample_index, params) -> the full text the "model" would write from here
Policy = Callable[[Prompt, int, SamplingParams], str]


def assistant_so_far(prompt: Prompt) -> str:
    """The partial assistant message being continued ("" when the prompt ends with a user turn)."""
    if isinstance(prompt, list) and prompt and prompt[-1]["role"] == "assistant":
        return prompt[-1]["content"]
    return ""


def question_of(prompt: Prompt) -> str:
    """The last user message of a chat prompt (the prompt itself for a raw string)."""
    if isinstance(prompt, str):
        return prompt
    return next(m["content"] for m in reversed(prompt) if m["role"] == "user")


class ScriptedBackend:
    """A Backend whose "model" is a Python function.

    Args:
        policy: ``policy(prompt, j, params) -> text`` for sample ``j`` of a prompt.
        delay_s: sleep per ``generate`` call (to test interruption and overlap).

    Attributes:
        calls: every ``(prompts, params)`` passed to ``generate``, for assertions.
    """

    name = "scripted"
    model_id = "scripted-policy"

    def __init__(self, policy: Policy, delay_s: float = 0.0) -> None:
        self.policy = policy
        self.delay_s = delay_s
        self.calls: list[tuple[list[Prompt], SamplingParams]] = []
        self._lock = threading.Lock()

    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
        """``params.n`` completions per prompt, in input order (see the module docstring)."""
        import time

        with self._lock:
            self.calls.append((list(prompts), params))
        if self.delay_s:
            time.sleep(self.delay_s)
        out = []
        for p in prompts:
            out.append([self._one(p, j, params) for j in range(params.n)])
        return out

    def _one(self, prompt: Prompt, j: int, params: SamplingParams) -> Completion:
        text = self.policy(prompt, j, params)
        hit = find_stop(text, params.stop)
        cut, stop_reason = hit if hit is not None else (len(text), None)
        finish = "stop"
        words = text[:cut].split(" ")
        if len(words) > params.max_tokens:
            text, stop_reason, finish = " ".join(words[: params.max_tokens]), None, "length"
        else:
            text = text[:cut]
        return Completion(text=text, finish_reason=finish, stop_reason=stop_reason,
                          prompt_tokens=len(self.render(prompt).split()),
                          completion_tokens=len(text.split()), cumulative_logprob=None)

    def render(self, prompt: Prompt) -> str:
        """A plain rendering of the prompt (role-tagged lines for chats)."""
        if isinstance(prompt, str):
            return prompt
        return "\n".join(f"<{m['role']}> {m['content']}" for m in prompt)

    def close(self) -> None:
        """Nothing to release."""


class CountingSandbox:
    """Wraps a real Sandbox and counts its sessions while open (a test/benchmark probe).

    Counted independently of whoever opens them (e.g. the TIR engine's session bound), so a
    test can check how many sessions were open at once. Everything but ``session`` is
    forwarded to the wrapped sandbox.

    Attributes:
        sb: the wrapped sandbox; ``config``: its config.
        open: sessions open now; ``peak``: most open at once; ``opened``: opened in total.
    """

    def __init__(self, sb: Any) -> None:
        self.sb, self.config = sb, sb.config
        self.open = self.peak = self.opened = 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sb, name)

    def session(self, **kwargs: Any) -> Any:
        """A session of the wrapped sandbox whose ``close`` is counted."""
        outer, inner = self, self.sb.session(**kwargs)

        class Counted:
            def run(self, code: str, **kw: Any) -> Any:
                return inner.run(code, **kw)

            def close(self) -> None:
                inner.close()
                with outer._lock:
                    outer.open -= 1

        with self._lock:
            self.open += 1
            self.opened += 1
            self.peak = max(self.peak, self.open)
        return Counted()
