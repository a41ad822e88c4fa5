"""Tool-integrated GRPO: each completion owns a sandbox session; tool output is masked.

Two ways in, both ending with tool-output tokens out of the loss:

* :class:`TirRollout` -- a TRL ``rollout_func`` for the ToRA text format our prompts use
  (``reasoning/prompts/tir.yaml``). It is the token/mask adapter of the one TIR engine
  (:mod:`verimath.reasoning.tir`, shared with eval and datagen): the model writes ```python blocks,
  each block runs in the completion's own :class:`~verimath.reasoning.sandbox.SandboxSession`
  (opened lazily at the first block, at most ``max_sessions`` at once, closed when the completion
  ends), its output is appended as an ```output block, and generation resumes, at most
  ``max_tool_calls`` times. The TIR stop strings reach the trainer's generator
  (:func:`generation_stops`), so nothing past a closed code fence is generated. It returns
  ``env_mask`` (1 = model token, 0 = tool token), which TRL multiplies into the loss mask, plus
  the columns the rewards read (``tir_answer``, ``tir_error``, ``tool_statuses``). Works with
  any chat template and with vLLM or transformers generation. It renders the prompts itself
  (:func:`prompt_token_ids`, as TRL asks of a ``rollout_func``) and calls the trainer's own
  single-turn generator, ``GRPOTrainer._generate_single_turn``: TRL has no public generator
  for a rollout in the tested range, so :func:`verimath.rl.trl_compat.check_trl` verifies that
  hook (and :func:`~verimath.rl.trl_compat.check_rollout_trainer` the attributes
  :func:`generation_stops` sets) when the trainer is built.
* :class:`PythonSandboxEnv` -- an ``environment_factory`` environment for models whose chat
  template supports tool calls (Qwen2.5/3 style): TRL exposes its ``python`` method as a tool
  and masks the tool messages itself.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from verimath.reasoning.tir import (
    TIR_STOP,
    SessionSlots,
    TirEngine,
    drive,
    find_cut,
    interpreter_lost,
)

log = logging.getLogger(__name__)


class PythonSandboxEnv:
    """A TRL environment: one persistent Python session per rollout.

    Args:
        sandbox: a :class:`verimath.reasoning.sandbox.Sandbox` (its ``session()`` opens a session).
        max_output_chars: tool output shown to the model is cut to this many characters.

    Attributes:
        statuses: ``ExecStatus`` values of this rollout's runs, in order.
        infra_error: True once the sandbox itself failed in this rollout (rewards give None).
    """

    def __init__(self, sandbox: Any, max_output_chars: int = 800) -> None:
        self._sandbox = sandbox
        self._max_output_chars = max_output_chars
        self._session: Any = None
        self._last: Any = None
        self.statuses: list[str] = []
        self.infra_error = False

    def reset(self, **_: Any) -> str | None:
        """Begin a new rollout: close the previous session; a new one opens at the first call."""
        self._close()
        self._last = None
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
        from verimath.reasoning.sandbox import ExecResult, ExecStatus, SandboxError
        from verimath.reasoning.tir import tool_feedback

        try:
            if self._session is None:
                self._session = self._sandbox.session()
            result = self._session.run(code)
        except SandboxError as e:
            result = ExecResult(ExecStatus.SANDBOX_ERROR, "", f"[sandbox] {e}\n", None, 0.0, 0.0,
                                "unknown")
        lost = interpreter_lost(result, self._last)
        self._last = result
        self.statuses.append("sandbox_error" if lost else str(result.status))
        if lost or str(result.status) == "sandbox_error":
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


def _merged(existing: str | Sequence[str] | None, stops: Sequence[str]) -> list[str]:
    """The user's own stop strings (``generation_kwargs``) followed by ``stops``, no repeats."""
    own = [existing] if isinstance(existing, str) else list(existing or ())
    return list(dict.fromkeys([*own, *stops]))


@contextlib.contextmanager
def generation_stops(trainer: Any, stops: Sequence[str]) -> Iterator[None]:
    """Make ``trainer._generate_single_turn`` stop at ``stops`` while the block runs.

    TRL 1.16 has no per-call stop argument, so the setting is applied to what its generator
    reads (added to any stop strings of ``GRPOConfig.generation_kwargs``), and restored
    afterwards:

    * vLLM (``use_vllm``, server or colocate): ``vllm_generation.generation_kwargs`` gets
      ``stop`` and ``include_stop_str_in_output=True`` (vLLM ``SamplingParams``);
    * transformers ``generate``: ``generation_config.stop_strings``, plus the tokenizer that
      ``StopStringCriteria`` needs, bound into ``trainer.model.generate`` (TRL calls it without
      one; ``accelerator.unwrap_model`` hands back that same module);
    * transformers continuous batching: not supported there; the completion is cut after the
      block instead (as on every path, see :class:`TirRollout`).

    Args:
        trainer: a ``trl.GRPOTrainer``.
        stops: stop strings; empty leaves generation as it is.
    """
    if not stops:
        yield
        return
    if getattr(trainer, "use_vllm", False):
        gen = trainer.vllm_generation
        saved = gen.generation_kwargs
        gen.generation_kwargs = {**(saved or {}), "stop": _merged((saved or {}).get("stop"), stops),
                                 "include_stop_str_in_output": True}
        try:
            yield
        finally:
            gen.generation_kwargs = saved
        return
    if getattr(trainer, "use_transformers_continuous_batching", False):
        log.debug("continuous batching takes no stop strings; cutting after the block instead")
        yield
        return
    config, model = trainer.generation_config, trainer.model
    tokenizer = getattr(trainer.processing_class, "tokenizer", trainer.processing_class)
    saved_stops, own = config.stop_strings, "generate" in vars(model)
    original = model.generate
    config.stop_strings = _merged(saved_stops, stops)
    model.generate = functools.partial(original, tokenizer=tokenizer)
    try:
        yield
    finally:
        config.stop_strings = saved_stops
        if own:
            model.generate = original
        else:
            del model.generate


def prompt_token_ids(trainer: Any, prompts: Sequence[Any]) -> list[list[int]]:
    """Token ids of each prompt as TRL's own generation path renders it (text-only models).

    Chat prompts (lists of messages) go through the tokenizer's chat template with the
    generation prompt and ``GRPOConfig.chat_template_kwargs``; plain strings through the
    tokenizer. TRL asks a ``rollout_func`` to do this itself (it hands over the raw prompts).

    Args:
        trainer: a ``trl.GRPOTrainer`` (its ``processing_class`` and ``args``).
        prompts: (N,) chat message lists or strings.

    Returns:
        (N,) lists of token ids, unpadded.
    """
    tok = trainer.processing_class
    if not prompts:
        return []
    if isinstance(prompts[0], str):
        return [list(ids) for ids in tok(text=list(prompts))["input_ids"]]
    out = tok.apply_chat_template(list(prompts), add_generation_prompt=True, tokenize=True,
                                  return_dict=True,
                                  **(trainer.args.chat_template_kwargs or {}))
    return [list(ids) for ids in out["input_ids"]]


@dataclass
class _Tokens:
    """The token view of one TIR completion in progress."""

    prompt_ids: list[int]
    ids: list[int] = field(default_factory=list)
    mask: list[int] = field(default_factory=list)
    logps: list[float] | None = None
    synced: int = 0  # engine spans already turned into tokens


@dataclass
class TirRollout:
    """TRL ``rollout_func`` for tool-integrated reasoning in the ToRA text format.

    Args:
        sandbox: the sandbox pool; each completion gets its own session, opened at its first
            python block and closed as soon as it ends.
        max_tool_calls: python blocks run per completion; after that the model writes once more
            and whatever code it writes is not run.
        max_tool_output_chars: tool output shown to the model is cut to this many characters.
        workers: concurrent cell runs.
        max_sessions: most sandbox sessions open at once; a completion that reaches a block
            while all are taken waits for one.

    Attributes:
        last_slots: the :class:`verimath.reasoning.tir.SessionSlots` of the last call (``peak``,
            ``opened``), for logging and tests.

    Call: ``(prompts: (N,), trainer) -> dict`` with, per completion, ``prompt_ids``,
    ``completion_ids``, ``logprobs`` (None without vLLM), ``env_mask`` (1 model / 0 tool, same
    length as ``completion_ids``), ``tir_answer`` (the model's answer, else the last good
    cell's raw stdout), ``tir_error`` (True: infrastructure failure, rewards give None) and
    ``tool_statuses``. ``prompts`` already holds each prompt ``num_generations`` times (TRL's
    sampler repeats them).
    """

    sandbox: Any
    max_tool_calls: int = 4
    max_tool_output_chars: int = 800
    workers: int = 4
    max_sessions: int = 64
    last_slots: SessionSlots | None = field(default=None, init=False, repr=False)

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, Any]:
        """Roll out every prompt with tool calls (see the class docstring)."""
        toks = [_Tokens(prompt_ids=p) for p in prompt_token_ids(trainer, prompts)]
        engines = [TirEngine(self.max_tool_calls, self.max_tool_output_chars) for _ in toks]

        def generate(todo: list[int]) -> None:
            live = []
            for i in todo:
                self._sync_tool_tokens(toks[i], engines[i], trainer)
                if len(toks[i].ids) >= trainer.max_completion_length:
                    engines[i].abort("length")
                else:
                    live.append(i)
            for tools in (True, False):
                idx = [i for i in live if engines[i].tools_left is tools]
                if not idx:
                    continue
                with generation_stops(trainer, TIR_STOP if tools else ()):
                    ids, logps = trainer._generate_single_turn(
                        [toks[i].prompt_ids + toks[i].ids for i in idx], None, {},
                        num_generations=1)
                for k, i in enumerate(idx):
                    self._take(toks[i], engines[i], list(ids[k]),
                               None if logps is None else list(logps[k]), trainer)

        self.last_slots = drive(engines, generate, self.sandbox, max_sessions=self.max_sessions,
                                workers=self.workers)
        return {
            "prompt_ids": [t.prompt_ids for t in toks],
            "completion_ids": [t.ids for t in toks],
            "logprobs": None if toks and toks[0].logps is None else [t.logps for t in toks],
            "env_mask": [t.mask for t in toks],
            "tir_answer": [e.answer() for e in engines],
            "tir_error": [e.finish_reason == "error" for e in engines],
            "tool_statuses": [[c.status for c in e.calls] for e in engines],
        }

    @staticmethod
    def _take(t: _Tokens, e: TirEngine, new: list[int], logps: list[float] | None,
              trainer: Any) -> None:
        """Feed one generated turn to the engine; keep its tokens up to the end of the block."""
        tok = trainer.processing_class
        text = tok.decode(new, skip_special_tokens=True)
        budget = trainer.max_completion_length - len(t.ids)
        cut = find_cut(text) if e.tools_left else None
        k = len(new) if cut is None else tokens_for_chars(tok, new, cut.keep, cover=cut.closed)
        eos = set(getattr(trainer, "eos_token_ids", None) or [tok.eos_token_id])
        finish = "stop" if new and new[-1] in eos else "length"
        if k > budget:  # the turn does not fit: the completion ends truncated
            k = budget
            e.feed(tok.decode(new[:k], skip_special_tokens=True), "length", final=True)
        else:
            e.feed(text, finish)
        e.tokens += k
        t.ids += new[:k]
        t.mask += [1] * k
        if logps is not None:
            t.logps = (t.logps or []) + logps[:k]
        t.synced = len(e.spans)

    @staticmethod
    def _sync_tool_tokens(t: _Tokens, e: TirEngine, trainer: Any) -> None:
        """Append the tokens of tool output blocks the engine added since the last turn."""
        from verimath.records import SpanKind

        tok = trainer.processing_class
        for span in e.spans[t.synced:]:
            if span.kind is not SpanKind.TOOL:
                continue
            tool_ids = tok(span.text, add_special_tokens=False)["input_ids"]
            tool_ids = tool_ids[:max(0, trainer.max_completion_length - len(t.ids))]
            t.ids += tool_ids
            t.mask += [0] * len(tool_ids)
            if t.logps is not None:
                t.logps += [0.0] * len(tool_ids)
        t.synced = len(e.spans)
