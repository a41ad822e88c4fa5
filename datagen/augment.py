"""Verified augmentation of synthesized programs: numeric variation and backward questions.

Every new problem's answer comes from executing a verified program in the sandbox, never from
a model (MuMath-Code, Yin et al. 2024, "multi-perspective augmentation"; FOBAR, Jiang et al.
2024, "Forward-Backward Reasoning").

* **Numeric variation**: the *mutable* input constants of a verified :class:`RefProgram` get new
  values, written into the question (at the number's own span) and into the program alike;
  the program is re-executed and what it prints is the new gold. A draw is dropped when a
  step whose original value was a whole number becomes a fraction (a count must stay whole)
  or a non-negative one becomes negative; then another draw is tried (``max_tries``).
* **Backward question**: one mutable constant is replaced by ``X`` in the question, the original
  answer is given ("If we know the answer to the above question is A, what is the value of
  unknown variable X?", FOBAR's template), and the answer is the masked value. The program
  solves for ``x`` with sympy; it is kept when it has exactly one solution, that solution is
  the masked value, and the forward program run with the recovered value prints the original
  answer.

A constant is mutable only when changing it cannot leave the question and the program
inconsistent: it is written once in the question (as digits, not glued to letters, ``:`` or
``/``), no word in it may stand for the same value (``two``, ``dozen``, ``hour`` for 60...),
it is > 1, and its value is neither a step's result nor a
literal of the program. A program in which a later step reuses a result whose value is also
written in the question is not augmented at all (which of the two is meant is ambiguous). A
program with a literal that is not a common unit constant (``60``, ``100``, ``12``...) may hide
a value derived from the question outside the annotations; it is not augmented either
(``unexplained_literal``).
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from verimath.datagen.export import export_row
from verimath.datagen.refprog import (
    RefProgram,
    input_lines,
    literal_of,
    parse_number,
    pot_program,
    question_numbers,
    steps_program,
)
from verimath.datagen.runner import Item, Outcome, fingerprint, reject
from verimath.datagen.stages import item_problem
from verimath.datagen.synth import SYNTH_VERSION, SharedTools, pot_attempt
from verimath.records import Problem, Verdict, VerdictStatus, content_hash, judged

if TYPE_CHECKING:
    from verimath.datagen.config import DatagenConfig
    from verimath.reasoning.sandbox import ExecResult

log = logging.getLogger(__name__)

#: literals a program may contain and still be augmented (units, halves, percent, calendar)
UNIT_CONSTANTS = frozenset(Fraction(v) for v in (
    *range(0, 13), 15, 16, 20, 24, 25, 30, 31, 36, 48, 50, 52, 60, 100, 365, 1000, 3600,
    "0.5", "0.25", "0.75", "0.1", "0.01"))
#: word stems that can stand for a value the solution then writes as a number ("two
#: daughters", "per hour" = 60 minutes): a question constant with that value is not changed
NUMBER_WORDS = {
    2: ("two", "half", "twice", "double", "pair", "second", "both", "couple", "twin"),
    3: ("three", "triple", "third", "yard"), 4: ("four", "quarter", "fourth"),
    5: ("five", "fifth"), 6: ("six",), 7: ("seven", "week"), 8: ("eight",), 9: ("nine",),
    10: ("ten", "dime", "decade"), 11: ("eleven",),
    12: ("twelve", "dozen", "year", "month", "foot", "feet", "inch"), 15: ("fifteen",),
    20: ("twenty", "score"), 24: ("day", "hour"), 25: ("quarter",), 30: ("thirty", "month"),
    31: ("month",), 50: ("fifty",), 52: ("year", "week"), 60: ("sixty", "hour", "minute"),
    100: ("hundred", "percent", "%", "cent", "century"), 365: ("year",),
    1000: ("thousand", "kilo"), 3600: ("hour",),
}
FOBAR = " If we know the answer to the above question is {answer}, what is the value of " \
        "unknown variable X?"
AUGMENT_VERSION = "augment-v2"


@dataclass(frozen=True)
class Mutable:
    """A constant that may be changed: its input variable and its span in the question."""

    name: str
    value: Fraction
    literal: str
    start: int
    end: int
    text: str
    percent: bool


def mutable_constants(question: str, prog: RefProgram) -> tuple[list[Mutable], str | None]:
    """The program's mutable inputs (module docstring) and, when there are none, why.

    Returns:
        ``(mutables, None)``, or ``([], reason)`` with reason ``unexplained_literal`` or
        ``ambiguous_constant``.
    """
    odd = sorted({v for v in prog.literals if v not in UNIT_CONSTANTS})
    if odd:
        return [], f"unexplained_literal: {', '.join(str(v) for v in odd[:3])}"
    if prog.ambiguous:
        return [], f"ambiguous_constant: {prog.ambiguous[0]}"
    claimed = {s.claimed for s in prog.steps}
    qnums = question_numbers(question)
    qvalues = {q.value for q in qnums}
    by_name = {s.name: s.claimed for s in prog.steps}
    for s in prog.steps:  # "12 pens" reused where the question's "12 pencils" may be meant
        for kind, ref in s.tokens:
            if kind == "step" and by_name.get(ref) in qvalues:
                return [], (f"ambiguous_constant: the question's {by_name[ref]} is also the "
                            f"result {ref} that a later step uses")
    low = question.lower()
    out = []
    for inp in prog.inputs:
        spots = [q for q in qnums if q.value == inp.value]
        words = NUMBER_WORDS.get(int(inp.value), ()) if inp.value.denominator == 1 else ()
        named = any(re.search(rf"(?<![a-z]){re.escape(w)}", low) for w in words)
        if (len(spots) != 1 or not spots[0].standalone or inp.value <= 1 or named
                or inp.value in claimed or inp.value in prog.literals):
            continue
        q = spots[0]
        tail = question[q.end:q.end + 9].lower()
        out.append(Mutable(inp.name, inp.value, inp.literal, q.start, q.end, q.text,
                           tail.startswith("%") or tail.lstrip().startswith("percent")))
    if not out:
        return [], "ambiguous_constant: every input is repeated, a step result or a literal"
    return out, None


def draw_value(m: Mutable, rng: random.Random, avoid: set[Fraction]) -> Fraction | None:
    """A new value for ``m``: within 0.5x..1.5x, same decimals, round numbers stay round."""
    places = len(m.literal.split(".", 1)[1]) if "." in m.literal else 0
    for _ in range(20):
        if places == 0:
            v = int(m.value)
            step = 10 if v % 10 == 0 and v >= 20 else 5 if v % 5 == 0 and v >= 10 else 1
            lo, hi = max(2, v // 2), max(v // 2 + 3 * step, (3 * v) // 2)
            if m.percent:
                hi = min(hi, 100)
            cand = Fraction(rng.randrange(lo // step, hi // step + 1) * step)
        else:
            x = float(m.value) * rng.uniform(0.5, 1.5)
            cand = Fraction(f"{x:.{places}f}")
        if cand > 0 and cand != m.value and cand not in avoid:
            return cand
    return None


def question_with(question: str, changes: list[tuple[Mutable, str]]) -> str:
    """``question`` with each mutable's span replaced by its new text (right to left)."""
    out = question
    for m, text in sorted(changes, key=lambda c: -c[0].start):
        out = out[:m.start] + text + out[m.end:]
    return out


def written_like(value: Fraction, m: Mutable) -> str:
    """``value`` written as the question wrote ``m`` (thousands commas, decimals)."""
    lit = literal_of(value, m.literal)
    if "," in m.text and "." not in lit:
        return f"{int(lit):,}"
    return lit


def answer_text(value: Fraction) -> str:
    """A canonical answer string: ``"23"``, ``"2.5"``."""
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.10f}".rstrip("0").rstrip(".")


def is_whole(v: Fraction) -> bool:
    """Whole within float noise (1e-9 relative)."""
    return abs(v - round(v)) <= Fraction(1, 10**9) * max(1, abs(v))


def backward_program(prog: RefProgram, masked: str, answer: str) -> str:
    """The backward PoT program: the forward steps with ``masked`` as a sympy symbol, solved.

    ``[x_value] = solve(...)`` unpacks exactly one solution, so the program fails (a
    ``ValueError``) when there is none or more than one.
    """
    body = ["from sympy import Eq, solve, symbols", "", 'x = symbols("x")']
    body += input_lines(prog, {masked: "x"})
    body += [f"{s.name} = {s.expression()}" for s in prog.steps]
    body.append(f"[x_value] = solve(Eq({prog.answer.name}, {answer}), x)")
    body.append("print(x_value)")
    return "\n".join(body) + "\n"


class AugmentStage:
    """Verified programs -> new verified problems (module docstring).

    Output items: ``{"key", "problem", "rows": [pot row]}`` (numeric variants first, then
    backward questions). Sub-record rejections are counted as ``variants``.

    Args:
        cfg: the run config (``synth.augment``).
        tools: shared sandbox.
    """

    name = "augment"
    uses_verifiers = True  # sandbox/grader settings join the settings and keys (runner)
    unit_in = "programs"
    unit_out = "problems"

    def __init__(self, cfg: DatagenConfig, tools: SharedTools) -> None:
        from verimath.reasoning.rollout import load_prompt

        self.cfg = cfg
        self.acfg = cfg.synth.augment
        self.tools = tools
        self.batch_size = cfg.synth.batch_size
        self.template = load_prompt("pot")
        self.max_chars = cfg.rollout.max_tool_output_chars
        self.timing: defaultdict[str, float] = defaultdict(float)
        self.fingerprint = fingerprint("augment", AUGMENT_VERSION, SYNTH_VERSION,
                                       asdict(self.acfg), self.template.hash, self.max_chars)

    def prepare(self, items: list[Item], todo: list[Item]) -> None:
        """Start the sandbox (only when there is work)."""
        self.tools.sandbox()

    def manifest_extra(self) -> dict[str, Any]:
        """Entries for the run manifest."""
        return {"augment": {"fingerprint": self.fingerprint, "version": AUGMENT_VERSION,
                            **asdict(self.acfg)}}

    def _run(self, codes: list[str]) -> list[ExecResult]:
        t = time.perf_counter()
        out = self.tools.sandbox().run_many(codes) if codes else []
        self.timing["augment_sandbox_s"] += time.perf_counter() - t
        return out

    def process(self, items: list[Item]) -> list[Outcome]:
        """Numeric variants and backward questions of a batch, all verified by execution."""
        outs = [Outcome() for _ in items]
        ctx = []
        for it, o in zip(items, outs, strict=True):
            p = item_problem(it)
            prog = RefProgram.from_dict(it["program"])
            muts, why = mutable_constants(p.informal, prog)
            if why:
                o.rejected.append(reject({"key": it["key"], "problem_id": p.id}, why,
                                         self.unit_in))
            ctx.append((it, p, prog, muts))
        self._numeric(ctx, outs)
        self._backward(ctx, outs)
        for (it, p, _, _), o in zip(ctx, outs, strict=True):
            if not o.kept and not any(r["unit"] == self.unit_in for r in o.rejected):
                why = ", ".join(sorted({r["reason"].split(":")[0] for r in o.rejected}))
                o.rejected.append(reject({"key": it["key"], "problem_id": p.id},
                                         f"no_variant: {why or 'nothing asked for'}",
                                         self.unit_in))
        return outs

    # ------------------------------------------------------------------ numeric variation

    def _numeric(self, ctx: list[Any], outs: list[Outcome]) -> None:
        """Draw, check (every step's value, one run each), then run the record's program."""
        pending = [(ci, v) for ci, c in enumerate(ctx) if c[3]
                   for v in range(self.acfg.numeric_variants)]
        last: dict[tuple[int, int], str] = {}
        accepted: list[tuple[int, int, dict[str, Fraction], ExecResult]] = []
        for attempt in range(self.acfg.max_tries):
            if not pending:
                break
            cands = [(ci, v, self._draw(ctx[ci], v, attempt)) for ci, v in pending]
            runs = self._run([steps_program(ctx[ci][2], self._literals(ctx[ci][3], new))
                              for ci, _, new in cands])
            still = []
            for (ci, v, new), steps in zip(cands, runs, strict=True):
                why = self._numeric_check(ctx[ci][2], new, steps)
                if why is None:
                    accepted.append((ci, v, new, steps))
                else:
                    last[(ci, v)] = why
                    still.append((ci, v))
            pending = still
        accepted.sort(key=lambda a: a[:2])
        # the record's own program: what it prints is the new gold
        final = self._run([pot_program(ctx[ci][2], self._literals(ctx[ci][3], new))
                           for ci, _, new, _ in accepted])
        for (ci, v, new, steps), res in zip(accepted, final, strict=True):
            why = self._printed_check(res, steps)
            if why is None:
                outs[ci].kept.append(self._numeric_item(ctx[ci], v, new, res))
            else:
                pending.append((ci, v))
                last[(ci, v)] = why
        for ci, v in pending:
            rec = {"key": content_hash(ctx[ci][0]["key"], "num", v), "problem_id": ctx[ci][1].id}
            outs[ci].rejected.append(reject(rec, last[(ci, v)], "variants"))

    def _draw(self, c: Any, v: int, attempt: int) -> dict[str, Fraction]:
        """New values for the mutable constants (seeded by problem, variant and attempt)."""
        _, p, prog, muts = c
        rng = random.Random(content_hash(p.id, self.acfg.seed, v, attempt))
        avoid = {q.value for q in question_numbers(p.informal)} | set(prog.literals)
        avoid |= {s.claimed for s in prog.steps if s.claimed is not None}
        new: dict[str, Fraction] = {}
        for m in muts:
            val = draw_value(m, rng, avoid)
            if val is not None:
                new[m.name] = val
                avoid.add(val)
        return new

    @staticmethod
    def _literals(muts: list[Mutable], new: dict[str, Fraction]) -> dict[str, str]:
        return {m.name: literal_of(new[m.name], m.literal) for m in muts if m.name in new}

    @staticmethod
    def _numeric_check(prog: RefProgram, new: dict[str, Fraction],
                       steps: ExecResult) -> str | None:
        """Why the step values of a draw are not acceptable (None: they are).

        Args:
            prog: the verified program.
            new: input name -> drawn value.
            steps: the execution of :func:`steps_program` with the drawn values.
        """
        if not new:
            return "no_value: no new value could be drawn"
        if not judged(steps):  # the one rule: SANDBOX_ERROR or a lost interpreter
            return f"sandbox_error: {steps.stderr.strip()[-200:]}"
        if not steps.ok:
            return f"exec_error: {steps.status}"
        values = [parse_number(x) for x in steps.stdout.split()]
        if len(values) != len(prog.steps) or any(x is None for x in values):
            return f"exec_error: unexpected step output {steps.stdout[:80]!r}"
        for s, x in zip(prog.steps, values, strict=True):
            assert x is not None
            if s.claimed is not None and s.claimed.denominator == 1 and not is_whole(x):
                return f"non_integer_count: {s.name} = {float(x):g}"
            if s.claimed is not None and s.claimed >= 0 and x < 0:
                return f"negative_value: {s.name} = {float(x):g}"
        return None

    @staticmethod
    def _printed_check(res: ExecResult, steps: ExecResult) -> str | None:
        """The record's program ran and printed the answer step's value."""
        if not judged(res):  # the one rule: SANDBOX_ERROR or a lost interpreter
            return f"sandbox_error: {res.stderr.strip()[-200:]}"
        printed = parse_number(res.stdout.strip().splitlines()[-1]) if res.ok and \
            res.stdout.strip() else None
        want = parse_number(steps.stdout.split()[-1])
        if printed is None or want is None or abs(printed - want) > Fraction(1, 10**9):
            return f"exec_mismatch: the program printed {res.stdout.strip()[:60]!r}"
        return None

    def _numeric_item(self, c: Any, v: int, new: dict[str, Fraction], res: ExecResult) -> Item:
        it, p, prog, muts = c
        printed = parse_number(res.stdout.strip().splitlines()[-1])
        assert printed is not None
        gold = answer_text(Fraction(round(printed)) if is_whole(printed) else printed)
        changes = [(m, written_like(new[m.name], m)) for m in muts if m.name in new]
        q = question_with(p.informal, changes)
        meta = {"augmentation": "numeric_variation", "parent_id": p.id,
                "changes": {m.name: [m.text, t] for m, t in changes}}
        newp = Problem(id=f"{p.id}/num{v}", source=f"{p.source}:numeric_variation",
                       informal=q, answer=gold, meta=meta)
        code = pot_program(prog, self._literals(muts, new))
        verdict = Verdict(VerdictStatus.CORRECT,
                          reason="gold computed by executing the verified program with the new "
                                 "constants; counts stay whole and non-negative",
                          detail={"printed": res.stdout.strip(), "parent_answer": p.answer})
        return self._item(it, newp, code, res, verdict, "numeric_variation", f"num{v}")

    # ------------------------------------------------------------------ backward questions

    def _backward(self, ctx: list[Any], outs: list[Outcome]) -> None:
        cands = []
        for ci, (_, p, _, muts) in enumerate(ctx):
            if parse_number(p.answer or "") is None:
                continue
            order = list(muts)
            random.Random(content_hash(p.id, self.acfg.seed, "backward")).shuffle(order)
            cands += [(ci, b, m) for b, m in enumerate(order[:self.acfg.backward])]
        first = self._run([backward_program(ctx[ci][2], m.name, _gold(ctx[ci][1]))
                           for ci, _, m in cands])
        recovered: list[tuple[int, int, Mutable, ExecResult, str]] = []
        for (ci, b, m), res in zip(cands, first, strict=True):
            why, value = self._solved(res, m)
            if why:
                rec = {"key": content_hash(ctx[ci][0]["key"], "bwd", b),
                       "problem_id": ctx[ci][1].id}
                outs[ci].rejected.append(reject(rec, why, "variants"))
            else:
                recovered.append((ci, b, m, res, value))
        forward = self._run([pot_program(ctx[ci][2], {m.name: val})
                             for ci, _, m, _, val in recovered])
        for (ci, b, m, res, val), fwd in zip(recovered, forward, strict=True):
            it, p, prog, _ = ctx[ci]
            out = parse_number(fwd.stdout.strip().splitlines()[-1]) if fwd.ok and \
                fwd.stdout.strip() else None
            gold = parse_number(p.answer or "")
            if out is None or gold is None or abs(out - gold) > Fraction(1, 10**6):
                rec = {"key": content_hash(it["key"], "bwd", b), "problem_id": p.id}
                outs[ci].rejected.append(reject(
                    rec, f"forward_check_failed: x = {val} gives {fwd.stdout.strip()[:40]!r}",
                    "variants"))
                continue
            q = question_with(p.informal, [(m, "X")]) + FOBAR.format(answer=p.answer)
            meta = {"augmentation": "backward", "parent_id": p.id, "masked": m.name,
                    "parent_answer": p.answer}
            newp = Problem(id=f"{p.id}/bwd{b}", source=f"{p.source}:backward", informal=q,
                           answer=m.literal if "." not in m.literal else answer_text(m.value),
                           meta=meta)
            verdict = Verdict(VerdictStatus.CORRECT,
                              reason="unique solution equals the masked value; the forward "
                                     "program run with it prints the original answer",
                              detail={"printed": res.stdout.strip(),
                                      "forward_printed": fwd.stdout.strip()})
            code = backward_program(prog, m.name, _gold(p))
            outs[ci].kept.append(self._item(it, newp, code, res, verdict, "backward", f"bwd{b}"))

    @staticmethod
    def _solved(res: ExecResult, m: Mutable) -> tuple[str | None, str]:
        """``(None, literal of the recovered value)`` or ``(reason, "")``."""
        if not judged(res):  # the one rule: SANDBOX_ERROR or a lost interpreter
            return f"sandbox_error: {res.stderr.strip()[-200:]}", ""
        if not res.ok:
            if "too many values to unpack" in res.stderr:
                return "not_unique: more than one solution", ""
            last = (res.stderr.strip().splitlines() or [str(res.status)])[-1]
            return f"no_solution: {last[:120]}", ""
        value = parse_number(res.stdout.strip())
        if value is None or abs(value - m.value) > Fraction(1, 10**6) * max(1, abs(m.value)):
            return f"wrong_recovery: printed {res.stdout.strip()[:40]!r}, masked {m.text}", ""
        return None, literal_of(value, m.literal)

    # ------------------------------------------------------------------ rows

    def _item(self, it: Item, p: Problem, code: str, res: ExecResult, verdict: Verdict,
              method: str, tag: str) -> Item:
        from verimath.reasoning.rollout import to_trajectory

        attempt = pot_attempt(code, res, self.max_chars)
        prov = {"source_method": method, "model": None, "backend": None, "strategy": "pot",
                "prompt_hash": self.template.hash, "isolation": self.tools.isolation,
                "parent_id": p.meta.get("parent_id"), "augment_version": AUGMENT_VERSION,
                "stage_fingerprint": self.fingerprint,
                "tool_calls": [c.to_dict() for c in attempt.tool_calls]}
        traj = to_trajectory(p, self.template.messages(p), attempt, {"execution": verdict}, prov)
        key = content_hash(it["key"], self.fingerprint, tag)
        row = export_row(traj, kind="pot", verified_by="execution", key=key, answer=p.answer)
        return {"key": key, "problem": p.to_dict(), "rows": [row]}


def _gold(p: Problem) -> str:
    """The problem's gold answer as a Python literal (``"1,000"`` -> ``1000``)."""
    value = parse_number(p.answer or "")
    assert value is not None, "backward questions are only built for numeric golds"
    return answer_text(value)
