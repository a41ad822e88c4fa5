"""CoT, program-of-thought and tool-integrated-reasoning rollouts.

* **CoT** – the model reasons in text; the final answer is boxed.
* **PoT** (Chen et al. 2022, "Program of Thoughts Prompting") – the model writes one program; it
  runs once in the sandbox and what it prints is the answer.
* **TIR** (Gou et al. 2023, "ToRA") – text and ```python blocks interleave. Generation stops at
  the end of a block, the block runs in the problem's sandbox *session* (state persists between
  blocks), its output is appended as an ```output block, and generation resumes; at most
  ``max_tool_calls`` blocks. Errors are shown to the model so it can correct itself.

Every :class:`~verimath.records.Attempt` records which spans are model text and which are tool
output, so SFT and GRPO can mask tool output. An infrastructure failure of the sandbox
(``SANDBOX_ERROR``) marks the attempt ``finish_reason="error"``: it is excluded from scoring,
never counted wrong.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasoning.extract import extract_answer, extract_program_output
from verimath.records import Attempt, Problem, Span, SpanKind, ToolCall, Trajectory, Verdict

if TYPE_CHECKING:
    from reasoning.sandbox import ExecResult, Sandbox, SandboxSession
    from verimath.backends import Backend, Completion, Prompt, SamplingParams

log = logging.getLogger(__name__)

PROMPT_DIR = Path(__file__).with_name("prompts")
#: TIR generation stops when a python block closes or the model opens an output block itself.
TIR_STOP = ("```output", "\n```\n")
_CODE_RE = re.compile(r"```(?:python|py)[ \t]*\n(.*?)(?:\n```|\Z)", re.DOTALL)


class Strategy(StrEnum):
    """How the model uses (or not) the interpreter."""

    COT = "cot"
    POT = "pot"
    TIR = "tir"


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt loaded from a YAML file under ``reasoning/prompts/``.

    Attributes:
        name: template name.
        system: system message ("" for none).
        user: user message template with a ``{question}`` placeholder.
        few_shot: ``({"user": ..., "assistant": ...}, ...)`` example turns.
        hash: sha256 (16 hex chars) of the template content; goes into run manifests.
    """

    name: str
    system: str
    user: str
    few_shot: tuple[dict[str, str], ...] = ()
    hash: str = ""

    def messages(self, problem: Problem) -> list[dict[str, str]]:
        """Chat messages for ``problem``: system, few-shot turns, then the question."""
        msgs: list[dict[str, str]] = []
        if self.system:
            msgs.append({"role": "system", "content": self.system})
        for shot in self.few_shot:
            msgs.append({"role": "user", "content": shot["user"]})
            msgs.append({"role": "assistant", "content": shot["assistant"]})
        msgs.append({"role": "user", "content": self.user.format(question=problem.informal)})
        return msgs


def load_prompt(strategy: Strategy | str, path: str | Path | None = None) -> PromptTemplate:
    """Load the prompt template for ``strategy`` (or from ``path``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file lacks ``user`` or its ``user`` has no ``{question}`` placeholder.
    """
    import yaml

    p = Path(path) if path else PROMPT_DIR / f"{Strategy(strategy).value}.yaml"
    raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    user = raw.get("user")
    if not isinstance(user, str) or "{question}" not in user:
        raise ValueError(f"{p}: field 'user' must be a string containing {{question}}")
    shots = tuple(
        {"user": str(s["user"]), "assistant": str(s["assistant"])}
        for s in raw.get("few_shot") or ()
    )
    body = {"system": raw.get("system") or "", "user": user, "few_shot": shots}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    return PromptTemplate(
        name=str(raw.get("name", p.stem)), system=str(body["system"]).strip(), user=user,
        few_shot=shots, hash=digest,
    )


@dataclass(frozen=True)
class RolloutConfig:
    """Rollout settings.

    Attributes:
        strategy: cot | pot | tir.
        max_tool_calls: TIR: most python blocks run per attempt. After the last one the model
            gets one more turn with no tool; code written then is not run and the attempt
            ends with finish_reason "tool_limit".
        max_tool_output_chars: tool output shown to the model is cut to this many characters.
        prompt_file: a YAML prompt template; None uses ``reasoning/prompts/<strategy>.yaml``.
        batch_problems: problems rolled out together (bounds live sandbox sessions to
            ``batch_problems * n``).
    """

    strategy: Strategy = Strategy.TIR
    max_tool_calls: int = 4
    max_tool_output_chars: int = 800
    prompt_file: str | None = None
    batch_problems: int = 8

    def __post_init__(self) -> None:
        object.__setattr__(self, "strategy", Strategy(self.strategy))
        if self.max_tool_calls < 1:
            raise ValueError("max_tool_calls must be >= 1 (use strategy 'cot' for no tools)")
        if self.max_tool_output_chars < 16:
            raise ValueError("max_tool_output_chars must be >= 16 so errors stay readable")
        if self.batch_problems < 1:
            raise ValueError("batch_problems must be >= 1")


def extract_code(text: str) -> str | None:
    """The last ```python block of ``text`` (closed or running to the end); None if none."""
    blocks = _CODE_RE.findall(text)
    return blocks[-1] if blocks else None


def tool_feedback(result: ExecResult, max_chars: int) -> str:
    """What the model sees after running a block: stdout, or the error's last lines.

    Long output keeps its head and tail with a ``...`` marker so the final value stays visible.
    """
    from reasoning.sandbox import ExecStatus

    if result.status is ExecStatus.OK:
        out = result.stdout.strip() or "(no output; use print() to see values)"
    elif result.status is ExecStatus.TIMEOUT:
        out = "TimeoutError: the code ran past its time limit"
    elif result.status is ExecStatus.MEMORY:
        out = "MemoryError: the code ran past its memory limit"
    else:
        lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
        out = "\n".join([result.stdout.strip(), *lines[-3:]]).strip() or str(result.status)
    if len(out) > max_chars:
        half = max_chars // 2 - 3
        out = out[:half] + "\n...\n" + out[-half:]
    return out


def _tool_call(code: str, result: ExecResult, shown: str) -> ToolCall:
    return ToolCall(code=code, status=str(result.status), output=shown,
                    wall_time_s=result.wall_time_s)


def _is_infra_failure(result: ExecResult) -> bool:
    from reasoning.sandbox import ExecStatus

    return result.status is ExecStatus.SANDBOX_ERROR


def finalize_completion(
    text: str, strategy: Strategy | str, sandbox: Sandbox | None, *, completion_tokens: int = 0,
    finish_reason: str = "stop", max_tool_output_chars: int = 800,
) -> Attempt:
    """Turn one finished completion into an Attempt (answer extracted, PoT program run).

    Used for completions generated anywhere (our rollouts, TRL's GRPO generation).

    Args:
        text: the completion (for TIR: already containing its output blocks).
        strategy: cot | pot | tir. PoT runs the last ```python block (or, if there is no
            fence, the whole text) once in ``sandbox``; its printed output is the answer.
        sandbox: needed for PoT; None is allowed for CoT/TIR.
        completion_tokens: model tokens of ``text``, copied into the Attempt.
        finish_reason: the generation's finish reason, copied into the Attempt.
        max_tool_output_chars: PoT: the program's output kept in the tool call record.

    Returns:
        An Attempt; ``finish_reason == "error"`` when the sandbox itself failed.

    Raises:
        ValueError: PoT without a sandbox.
    """
    strategy = Strategy(strategy)
    if strategy is Strategy.POT:
        if sandbox is None:
            raise ValueError("program-of-thought needs a sandbox to run the program")
        code = extract_code(text)
        code = code if code is not None else text
        result = sandbox.run(code)
        call = _tool_call(code, result, tool_feedback(result, max_tool_output_chars))
        answer = extract_program_output(result.stdout) if result.status == "ok" else None
        reason = "error" if _is_infra_failure(result) else finish_reason
        return Attempt(text=text, spans=(Span(SpanKind.MODEL, text),), tool_calls=(call,),
                       answer=answer, finish_reason=reason, completion_tokens=completion_tokens)
    model_text = text
    answer = extract_answer(model_text)
    return Attempt(text=text, spans=(Span(SpanKind.MODEL, text),), answer=answer,
                   finish_reason=finish_reason, completion_tokens=completion_tokens)


@dataclass
class _TirState:
    """A TIR attempt in progress (mutable while it rolls out)."""

    messages: list[dict[str, str]]
    session: SandboxSession | None
    spans: list[Span] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    tokens: int = 0
    finish: str | None = None

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.spans)

    def prompt(self) -> list[dict[str, str]]:
        if not self.spans:
            return self.messages
        return [*self.messages, {"role": "assistant", "content": self.text}]


def _tir_step(state: _TirState, comp: Completion, cfg: RolloutConfig) -> None:
    """Apply one generated chunk to ``state``: record it, run its code block, append output."""
    chunk = comp.text
    state.tokens += comp.completion_tokens
    code = extract_code(chunk) if comp.stop_reason in TIR_STOP else None
    if code is None:
        state.spans.append(Span(SpanKind.MODEL, chunk))
        state.finish = comp.finish_reason
        return
    if comp.stop_reason == "\n```\n":
        chunk += "\n```\n"
    elif not chunk.endswith("\n"):
        chunk += "\n"
    state.spans.append(Span(SpanKind.MODEL, chunk))
    assert state.session is not None
    result = state.session.run(code)
    shown = tool_feedback(result, cfg.max_tool_output_chars)
    state.calls.append(_tool_call(code, result, shown))
    state.spans.append(Span(SpanKind.TOOL, f"```output\n{shown}\n```\n"))
    if _is_infra_failure(result):
        state.finish = "error"


def _finish_tir(state: _TirState) -> Attempt:
    model_text = "".join(s.text for s in state.spans if s.kind is SpanKind.MODEL)
    answer = extract_answer(model_text)
    if answer is None and state.calls and state.calls[-1].status == "ok":
        answer = extract_program_output(state.calls[-1].output)
    return Attempt(text=state.text, spans=tuple(state.spans), tool_calls=tuple(state.calls),
                   answer=answer, finish_reason=state.finish or "stop",
                   completion_tokens=state.tokens)


def _rollout_tir(
    backend: Backend, prompts: list[list[dict[str, str]]], params: SamplingParams,
    cfg: RolloutConfig, sandbox: Sandbox,
) -> list[list[Attempt]]:
    """TIR for a batch of prompts: rounds of batched generation, then concurrent tool runs."""
    n = params.n
    states = [_TirState(messages=m, session=None) for m in prompts for _ in range(n)]
    one = replace(params, n=1, stop=tuple(dict.fromkeys((*params.stop, *TIR_STOP))))
    max_workers = max(1, getattr(getattr(sandbox, "config", None), "workers", 4))
    try:
        for s in states:
            s.session = sandbox.session()
        with ThreadPoolExecutor(max_workers=max_workers) as pool:
            for rnd in range(cfg.max_tool_calls + 1):
                active = [s for s in states if s.finish is None]
                if not active:
                    break
                last = rnd == cfg.max_tool_calls  # tool budget spent: let it answer, run nothing
                sp = replace(one, seed=params.seed + rnd, stop=params.stop if last else one.stop)
                outs = backend.generate([s.prompt() for s in active], sp)
                if last:
                    for s, o in zip(active, outs, strict=True):
                        s.spans.append(Span(SpanKind.MODEL, o[0].text))
                        s.tokens += o[0].completion_tokens
                        s.finish = "tool_limit" if extract_code(o[0].text) else o[0].finish_reason
                    break
                list(pool.map(lambda so: _tir_step(so[0], so[1][0], cfg),
                              zip(active, outs, strict=True)))
    finally:
        for s in states:
            if s.session is not None:
                s.session.close()
    attempts = [_finish_tir(s) for s in states]
    return [attempts[i * n:(i + 1) * n] for i in range(len(prompts))]


def rollout(
    backend: Backend, problems: Sequence[Problem], params: SamplingParams,
    config: RolloutConfig, sandbox: Sandbox | None,
    on_batch: Callable[[list[Problem], list[list[Attempt]]], None] | None = None,
) -> list[list[Attempt]]:
    """Sample ``params.n`` attempts per problem with the configured strategy.

    Args:
        backend: any :class:`verimath.backends.Backend`.
        problems: problems with ``informal`` text.
        params: sampling parameters; ``params.n`` attempts per problem.
        config: strategy and limits.
        sandbox: the interpreter pool (required for PoT and TIR; None for CoT).
        on_batch: called after each batch of ``config.batch_problems`` problems with the
            problems and their attempts (e.g. to write results as they come: resumability).

    Returns:
        ``attempts[i][j]``: attempt j of problem i; shape ``(len(problems), params.n)``.

    Raises:
        ValueError: PoT/TIR without a sandbox.
    """
    if config.strategy is not Strategy.COT and sandbox is None:
        raise ValueError(f"strategy {config.strategy} needs a sandbox")
    template = load_prompt(config.strategy, config.prompt_file)
    out: list[list[Attempt]] = []
    for start in range(0, len(problems), config.batch_problems):
        batch = list(problems[start:start + config.batch_problems])
        prompts = [template.messages(p) for p in batch]
        if config.strategy is Strategy.TIR:
            assert sandbox is not None
            got = _rollout_tir(backend, prompts, params, config, sandbox)
        else:
            got = _rollout_single(backend, prompts, params, config, sandbox)
        if on_batch is not None:
            on_batch(batch, got)
        out.extend(got)
    return out


def _rollout_single(
    backend: Backend, prompts: list[list[dict[str, str]]], params: SamplingParams,
    cfg: RolloutConfig, sandbox: Sandbox | None,
) -> list[list[Attempt]]:
    """CoT / PoT: one generation per attempt; PoT programs run concurrently in the pool."""
    as_prompts: list[Prompt] = list(prompts)
    outs = backend.generate(as_prompts, params)
    flat = [c for per in outs for c in per]

    def fin(c: Completion) -> Attempt:
        return finalize_completion(
            c.text, cfg.strategy, sandbox, completion_tokens=c.completion_tokens,
            finish_reason=c.finish_reason, max_tool_output_chars=cfg.max_tool_output_chars,
        )

    workers = max(1, getattr(getattr(sandbox, "config", None), "workers", 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        attempts = list(pool.map(fin, flat))
    n = params.n
    return [attempts[i * n:(i + 1) * n] for i in range(len(prompts))]


def to_trajectory(
    problem: Problem, messages: list[dict[str, str]], attempt: Attempt,
    verdicts: dict[str, Verdict], provenance: dict[str, Any],
) -> Trajectory:
    """An SFT record: the prompt messages plus the attempt as the assistant turn.

    Few-shot turns are dropped from ``messages`` (they are prompt scaffolding, not data): only
    the system message (if any) and the final user turn are kept.
    """
    kept = [m for m in messages if m["role"] == "system"][:1] + [messages[-1]]
    chat = (*kept, {"role": "assistant", "content": attempt.text})
    return Trajectory(problem=problem, messages=chat, spans=attempt.spans, verdicts=verdicts,
                      provenance=provenance)
