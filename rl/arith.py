"""A verifiable arithmetic task generated in code (for presets, tests and the learning benchmark).

Problems are small additions/subtractions/multiplications with exact integer answers, so the
grader's verdict is unambiguous. :func:`arithmetic_trajectories` writes teacher trajectories in
the same record format as ``verimath datagen`` (Trajectory dicts with model/tool spans) to teach
a small model the CoT / PoT / TIR output formats by SFT before GRPO. Their tool output is the
exact value computed here (the programs are one ``print`` of the expression), not a sandbox run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from verimath.records import Attempt, Problem, Span, SpanKind, ToolCall, Verdict, VerdictStatus

_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


@dataclass(frozen=True)
class ArithmeticConfig:
    """The synthetic task.

    Attributes:
        n: problems to generate.
        low / high: operands are drawn uniformly from [low, high].
        ops: operators to use ("+", "-", "*").
        seed: RNG seed; train and held-out sets use different seeds.
        template: question text with ``{a}``, ``{op}``, ``{b}``.
    """

    n: int = 256
    low: int = 1
    high: int = 9
    ops: tuple[str, ...] = ("+",)
    seed: int = 0
    template: str = "What is {a} {op} {b}?"

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("arithmetic.n must be >= 1")
        if self.low > self.high:
            raise ValueError("arithmetic.low must be <= arithmetic.high")
        bad = [o for o in self.ops if o not in _OPS]
        if bad or not self.ops:
            raise ValueError(f"arithmetic.ops: {bad or 'empty'}; choose from {sorted(_OPS)}")


def arithmetic_problems(cfg: ArithmeticConfig) -> list[Problem]:
    """``cfg.n`` problems with integer gold answers, deterministic in ``cfg.seed``."""
    rng = random.Random(cfg.seed)
    out = []
    for i in range(cfg.n):
        a, b = rng.randint(cfg.low, cfg.high), rng.randint(cfg.low, cfg.high)
        op = rng.choice(cfg.ops)
        out.append(Problem(
            id=f"arith-{cfg.seed}-{i}", source="arithmetic",
            informal=cfg.template.format(a=a, op=op, b=b), answer=str(_OPS[op](a, b)),
            meta={"a": a, "b": b, "op": op},
        ))
    return out


def teacher_attempt(problem: Problem, strategy: str) -> Attempt:
    """A correct solution in ``strategy``'s format (cot | pot | tir) with its spans."""
    a, b, op = problem.meta["a"], problem.meta["b"], problem.meta["op"]
    ans = problem.answer
    if strategy == "cot":
        text = f"{a} {op} {b} = {ans}. The answer is \\boxed{{{ans}}}."
        return Attempt(text=text, spans=(Span(SpanKind.MODEL, text),), answer=ans)
    code = f"print({a} {op} {b})"
    block = f"```python\n{code}\n```\n"
    if strategy == "pot":
        return Attempt(text=block, spans=(Span(SpanKind.MODEL, block),),
                       tool_calls=(ToolCall(code, "ok", ans or "", 0.0),), answer=ans)
    if strategy != "tir":
        raise ValueError(f"unknown strategy {strategy!r}: cot | pot | tir")
    spans = (Span(SpanKind.MODEL, f"Let me compute it.\n{block}"),
             Span(SpanKind.TOOL, f"```output\n{ans}\n```\n"),
             Span(SpanKind.MODEL, f"The answer is \\boxed{{{ans}}}."))
    return Attempt(text="".join(s.text for s in spans), spans=spans,
                   tool_calls=(ToolCall(code, "ok", ans or "", 0.0),), answer=ans)


def arithmetic_trajectories(problems: list[Problem], strategy: str) -> list[dict[str, Any]]:
    """Trajectory dicts (the ``verimath datagen`` export format) of teacher solutions.

    The prompt is the strategy's template from ``reasoning/prompts`` (few-shot turns dropped,
    as :func:`verimath.reasoning.rollout.to_trajectory` does for real data).
    """
    from verimath.reasoning.rollout import load_prompt, to_trajectory

    template = load_prompt(strategy)
    out = []
    for p in problems:
        att = teacher_attempt(p, strategy)
        verdicts = {"answer": Verdict(VerdictStatus.CORRECT, "synthetic teacher")}
        prov = {"model": "arithmetic-teacher", "prompt_hash": template.hash, "strategy": strategy}
        out.append(to_trajectory(p, template.messages(p), att, verdicts, prov).to_dict())
    return out
