"""Tool-integrated GRPO: each completion owns a sandbox session; tool output is masked.

Two ways in, both ending with tool-output tokens out of the loss:

* :class:`TirRollout` -- a TRL ``rollout_func`` for the ToRA text format our prompts use
  (``reasoning/prompts/tir.yaml``): the model writes ```python blocks, each block runs in the
  completion's own :class:`~reasoning.sandbox.SandboxSession` (state persists between blocks),
  its output is appended as an ```output block, and generation resumes, at most
  ``max_tool_calls`` times. It returns ``env_mask`` (1 = model token, 0 = tool token), which
  TRL multiplies into the loss mask, plus the columns the rewards read (``tir_answer``,
  ``tir_error``, ``tool_statuses``). Works with any chat template and with vLLM or
  transformers generation (it calls the trainer's own single-turn generator).
* :class:`PythonSandboxEnv` -- an ``environment_factory`` environment for models whose chat
  template supports tool calls (Qwen2.5/3 style): TRL exposes its ``python`` method as a tool
  and masks the tool messages itself.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from reasoning.rollout import TIR_STOP
from rl.concurrency import map_with_deadline

log = logging.getLogger(__name__)

_OUTPUT_STOP, _FENCE_STOP = TIR_STOP  # ("```output", "\n```\n"), as our own TIR rollouts


class PythonSandboxEnv:
    """A TRL environment: one persistent Python session per rollout.

    Args:
        sandbox: a :class:`reasoning.sandbox.Sandbox` (its ``session()`` opens a session).
        max_output_chars: tool output shown to the model is cut to this many characters.

    Attributes:
        statuses: ``ExecStatus`` values of this rollout's runs, in order.
        infra_error: True once the sandbox itself failed in this rollout (rewards give None).
    """

    def __init__(self, sandbox: Any, max_output_chars: int = 800) -> None:
        self._sandbox = sandbox
        self._max_output_chars = max_output_chars
        self._session: Any = None
        self.statuses: list[str] = []
        self.infra_error = False

    def reset(self, **_: Any) -> str | None:
        """Start a fresh session for a new rollout (the previous one is closed)."""
        self._close()
        self._session = self._sandbox.session()
        self.statuses = []
        self.infra_error = False
        return None

    def python(self, code: str) -> str:
        """Run Python code in a persistent interpreter and return what it printed.

        Args:
            code: Python source. Variables persist between calls; use print() to show values.

        Returns:
            The printed output, or the last lines of the error.
        """
        from reasoning.rollout import tool_feedback

        if self._session is None:
            self.reset()
        result = self._session.run(code)
        self.statuses.append(str(result.status))
        if str(result.status) == "sandbox_error":
            self.infra_error = True
        return tool_feedback(result, self._max_output_chars)

    def _close(self) -> None:
        if self._session is not None:
            try:
                self._session.close()
            finally:
                self._session = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown: the sandbox may be gone
            self._close()


def cut_after_code(text: str) -> tuple[int, str, bool] | None:
    r"""Where TIR generation should have stopped in ``text``, if a python block ends in it.

    Mirrors :data:`reasoning.rollout.TIR_STOP`: the first closing fence ``\\n```\\n`` (kept) or
    the first ```output the model writes itself (dropped: the sandbox writes outputs).

    Returns:
        ``(cut, code, cover)``: characters of ``text`` to keep, the block's code, and whether the
        kept tokens must reach ``cut`` (a closing fence, kept whole) or stay before it (the
        model's own ```output, dropped); None when no python block ends in ``text``.
    """
    from reasoning.rollout import extract_code

    hits = []
    if (i := text.find(_FENCE_STOP)) != -1:
        hits.append((i + len(_FENCE_STOP), True))
    if (i := text.find(_OUTPUT_STOP)) != -1:
        hits.append((i, False))
    for cut, cover in sorted(hits):
        code = extract_code(text[:cut])
        if code is not None:
            return cut, code, cover
    return None


def tokens_for_chars(tokenizer: Any, ids: list[int], n_chars: int, *, cover: bool) -> int:
    """How many leading tokens of ``ids`` decode to ``n_chars`` characters.

    Args:
        tokenizer: decodes ``ids``.
        ids: generated token ids.
        n_chars: characters of their decoded text to cover.
        cover: True -> the fewest tokens whose text reaches ``n_chars`` (may run a little past);
            False -> the most tokens whose text stays within ``n_chars``.

    Returns:
        k in [0, len(ids)] (binary search; decoded length is monotone in k).
    """
    def length(k: int) -> int:
        return len(tokenizer.decode(ids[:k], skip_special_tokens=True))

    lo, hi = 0, len(ids)
    if cover:
        while lo < hi:
            mid = (lo + hi) // 2
            if length(mid) >= n_chars:
                hi = mid
            else:
                lo = mid + 1
        return lo
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if length(mid) <= n_chars:
            lo = mid
        else:
            hi = mid - 1
    return lo


@dataclass
class _Rollout:
    """One TIR completion in progress."""

    prompt_ids: list[int]
    session: Any = None
    ids: list[int] = field(default_factory=list)
    mask: list[int] = field(default_factory=list)
    logps: list[float] | None = None
    model_text: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    error: bool = False
    done: bool = False


@dataclass
class TirRollout:
    """TRL ``rollout_func`` for tool-integrated reasoning in the ToRA text format.

    Args:
        sandbox: the sandbox pool; each completion gets its own session, closed at the end.
        max_tool_calls: python blocks run per completion; after that the model writes once more
            and whatever code it writes is not run.
        max_tool_output_chars: tool output shown to the model is cut to this many characters.
        workers: concurrent cell runs.
        timeout_s: wall-clock seconds for one round of cell runs; a cell still running then is
            an infrastructure failure of that completion (its rewards are None).

    Call: ``(prompts: (N,), trainer) -> dict`` with, per completion, ``prompt_ids``,
    ``completion_ids``, ``logprobs`` (None without vLLM), ``env_mask`` (1 model / 0 tool, same
    length as ``completion_ids``), ``tir_answer``, ``tir_error`` and ``tool_statuses``.
    ``prompts`` already holds each prompt ``num_generations`` times (TRL's sampler repeats them).
    """

    sandbox: Any
    max_tool_calls: int = 4
    max_tool_output_chars: int = 800
    workers: int = 4
    timeout_s: float = 60.0

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, Any]:
        """Roll out every prompt with tool calls (see the class docstring)."""
        prompt_ids, _, _ = trainer._tokenize_prompts(prompts)
        states = [_Rollout(prompt_ids=list(p)) for p in prompt_ids]
        try:
            for s in states:
                s.session = self.sandbox.session()
            for rnd in range(self.max_tool_calls + 1):
                active = [s for s in states if not s.done]
                if not active:
                    break
                ids, logps = trainer._generate_single_turn(
                    [s.prompt_ids + s.ids for s in active], None, {}, num_generations=1)
                last = rnd == self.max_tool_calls
                runs = [self._take(s, list(new), None if logps is None else list(logps[i]),
                                   trainer, last)
                        for i, (s, new) in enumerate(zip(active, ids, strict=True))]
                self._run_cells([(s, code) for s, code in zip(active, runs, strict=True)
                                 if code is not None], trainer)
        finally:
            for s in states:
                if s.session is not None:
                    s.session.close()
        return {
            "prompt_ids": [s.prompt_ids for s in states],
            "completion_ids": [s.ids for s in states],
            "logprobs": None if states and states[0].logps is None else [s.logps for s in states],
            "env_mask": [s.mask for s in states],
            "tir_answer": [self._answer(s) for s in states],
            "tir_error": [s.error for s in states],
            "tool_statuses": [s.statuses for s in states],
        }

    def _take(self, s: _Rollout, new: list[int], logps: list[float] | None, trainer: Any,
              last: bool) -> str | None:
        """Append generated tokens (cut after a python block); return the code to run."""
        tok = trainer.processing_class
        text = tok.decode(new, skip_special_tokens=True)
        cut = None if last else cut_after_code(text)
        budget = trainer.max_completion_length - len(s.ids)
        if cut is not None:
            k = tokens_for_chars(tok, new, cut[0], cover=cut[2])
            new, logps = new[:k], None if logps is None else logps[:k]
        new = new[:budget]
        s.ids += new
        s.mask += [1] * len(new)
        if logps is not None:
            s.logps = (s.logps or []) + logps[:len(new)]
        s.model_text.append(tok.decode(new, skip_special_tokens=True))
        if cut is None or len(s.ids) >= trainer.max_completion_length:
            s.done = True
            return None
        return cut[1]

    def _run_cells(self, jobs: list[tuple[_Rollout, str]], trainer: Any) -> None:
        from reasoning.rollout import tool_feedback

        tok = trainer.processing_class
        outs = map_with_deadline(lambda j: j[0].session.run(j[1]), jobs,
                                 workers=self.workers, timeout_s=self.timeout_s)
        for (s, _code), out in zip(jobs, outs, strict=True):
            if not out.ok or str(out.value.status) == "sandbox_error":
                s.statuses.append("sandbox_error")
                s.error = s.done = True
                continue
            s.statuses.append(str(out.value.status))
            shown = tool_feedback(out.value, self.max_tool_output_chars)
            s.outputs.append(shown)
            lead = "" if s.model_text[-1].endswith("\n") else "\n"
            tool_text = f"{lead}```output\n{shown}\n```\n"
            tool_ids = tok(tool_text, add_special_tokens=False)["input_ids"]
            tool_ids = tool_ids[:max(0, trainer.max_completion_length - len(s.ids))]
            s.ids += tool_ids
            s.mask += [0] * len(tool_ids)
            if s.logps is not None:
                s.logps += [0.0] * len(tool_ids)
            if len(s.ids) >= trainer.max_completion_length:
                s.done = True

    @staticmethod
    def _answer(s: _Rollout) -> str | None:
        """The answer in the model's own text, else the last program output (as TIR eval does)."""
        from reasoning.extract import extract_answer, extract_program_output

        answer = extract_answer("".join(s.model_text))
        if answer is None and s.outputs and s.statuses and s.statuses[-1] == "ok":
            answer = extract_program_output(s.outputs[-1])
        return answer
