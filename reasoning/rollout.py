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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verimath.reasoning.extract import extract_answer, extract_program_output
from verimath.reasoning.tir import TIR_STOP, TirEngine, drive, extract_code, tool_feedback
from verimath.records import (
    Attempt,
    Problem,
    Span,
    SpanKind,
    ToolCall,
    Trajectory,
    Verdict,
    judged,
)

if TYPE_CHECKING:
    from verimath.backends import Backend, Completion, Prompt, SamplingParams
    from verimath.reasoning.sandbox import ExecResult, Sandbox

log = logging.getLogger(__name__)

__all__ = ["TIR_STOP", "PromptTemplate", "RolloutConfig", "Strategy", "extract_code",
           "finalize_completion", "load_prompt", "rollout", "to_trajectory", "tool_feedback"]

PROMPT_DIR = Path(__file__).with_name("prompts")


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
        batch_problems: problems rolled out together.
        max_sessions: TIR: most sandbox sessions open at once (each is an interpreter process
            with its own uid). A session opens at an attempt's first code block and closes when
            the attempt ends; an attempt that needs one while all are taken waits. With
            sampling, the bound can change which random stream a turn draws (the stream
            depends on the turn's position in a generation call).
    """

    strategy: Strategy = Strategy.TIR
    max_tool_calls: int = 4
    max_tool_output_chars: int = 800
    prompt_file: str | None = None
    batch_problems: int = 8
    max_sessions: int = 64

    def __post_init__(self) -> None:
        object.__setattr__(self, "strategy", Strategy(self.strategy))
        if self.max_tool_calls < 1:
            raise ValueError("max_tool_calls must be >= 1 (use strategy 'cot' for no tools)")
        if self.max_tool_output_chars < 16:
            raise ValueError("max_tool_output_chars must be >= 16 so errors stay readable")
        if self.batch_problems < 1:
            raise ValueError("batch_problems must be >= 1")
        if isinstance(self.max_sessions, bool) or not isinstance(self.max_sessions, int) \
                or self.max_sessions < 1:
            raise ValueError(f"max_sessions must be an integer >= 1, got {self.max_sessions!r}")


def _tool_call(code: str, result: ExecResult, shown: str) -> ToolCall:
    return ToolCall(code=code, status=str(result.status), output=shown,
                    wall_time_s=result.wall_time_s, stdout=result.stdout)


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
        reason = "error" if not judged(result) else finish_reason  # the one predicate
        return Attempt(text=text, spans=(Span(SpanKind.MODEL, text),), tool_calls=(call,),
                       answer=answer, finish_reason=reason, completion_tokens=completion_tokens)
    model_text = text
    answer = extract_answer(model_text)
    return Attempt(text=text, spans=(Span(SpanKind.MODEL, text),), answer=answer,
                   finish_reason=finish_reason, completion_tokens=completion_tokens)


def _rollout_tir(
    backend: Backend, prompts: list[list[dict[str, str]]], params: SamplingParams,
    cfg: RolloutConfig, sandbox: Sandbox,
) -> list[list[Attempt]]:
    """TIR text adapter: :func:`verimath.reasoning.tir.drive` over ``backend.generate``.

    Turn ``k`` of every attempt is sampled with seed ``params.seed + k`` (n=1 per attempt);
    the backend's stop strings are :data:`TIR_STOP` while tools are left. Backends strip the
    stop string they matched, so it is added back before the engine sees the turn.
    """
    n = params.n
    engines = [TirEngine(cfg.max_tool_calls, cfg.max_tool_output_chars)
               for _ in prompts for _ in range(n)]
    messages = [m for m in prompts for _ in range(n)]

    def prompt(i: int) -> Prompt:
        if not engines[i].spans:
            return messages[i]
        return [*messages[i], {"role": "assistant", "content": engines[i].text}]

    def generate(todo: list[int]) -> None:
        groups: dict[tuple[int, bool], list[int]] = {}
        for i in todo:
            groups.setdefault((len(engines[i].calls), engines[i].tools_left), []).append(i)
        for (turn, tools), idx in groups.items():
            sp = replace(params, n=1, seed=params.seed + turn,
                         stop=engines[idx[0]].stops(params.stop) if tools else params.stop)
            outs = backend.generate([prompt(i) for i in idx], sp)
            for i, out in zip(idx, outs, strict=True):
                c = out[0]
                raw = c.text + (c.stop_reason if tools and c.stop_reason in TIR_STOP else "")
                engines[i].feed(raw, c.finish_reason, tokens=c.completion_tokens)

    workers = max(1, getattr(getattr(sandbox, "config", None), "workers", 4))
    slots = drive(engines, generate, sandbox, max_sessions=cfg.max_sessions, workers=workers)
    log.debug("TIR batch: %d attempts, %d sessions opened, peak %d open", len(engines),
              slots.opened, slots.peak)
    attempts = [e.attempt() for e in engines]
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
