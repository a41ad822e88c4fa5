r"""Executable programs from reference solutions with calculator annotations (pure functions).

GSM8K solutions (Cobbe et al. 2021) mark each computation with a calculator annotation,
``48/2 = <<48/2=24>>24``: the expression before ``=`` is plain arithmetic (digits, ``+ - * /``,
parentheses, ``.``), the part after it the value the solution claims. :func:`parse_reference`
turns such a solution into a :class:`RefProgram`:

* every number of an expression is *bound*: to an earlier step whose claimed value it equals
  (the solution reuses a result; the latest one not used yet, else the latest), else to an
  **input** constant when the question contains that number (one named variable per distinct
  value), else it stays a literal (``60`` minutes in an hour, ``2`` for "half");
* one step per annotation, named from the words after it (``24 clips in May`` -> ``clips``);
* the answer step is the last one whose claimed value equals the gold answer; later steps
  are dropped.

:func:`pot_program` renders it as a program-of-thought program (Chen et al. 2022): inputs,
one statement per step, ``print`` of the answer step. :func:`tir_cells` splits it into the
text / code cells of a tool-integrated-reasoning trajectory (ToRA, Gou et al. 2023). Nothing
here runs code: verification is the sandbox's job (:mod:`verimath.datagen.synth`).
"""

from __future__ import annotations

import ast
import builtins
import keyword
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

ANNOTATION_RE = re.compile(r"<<([^<>]*)>>")
#: a number as written in a question: 1,000 / 12 / 0.5 / .5 (no sign: "-" is a hyphen there)
QUESTION_NUMBER_RE = re.compile(
    r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|(?<![\w.])\.\d+")
_EXPR_TOKEN_RE = re.compile(r"\s*(?:(\d+\.?\d*|\.\d+)|(\*\*|//|[-+*/()]))")
_WORD_RE = re.compile(r"[A-Za-z]+")
_STOP = frozenset(
    "a an the of and or to in on at for from by with per each every his her their its our your "
    "my he she they it we you i is are was were be been has have had will would can could "
    "that this these those than then so if as which who what how many much more less total "
    "all also only just now there here into out up down over about after before one two "
    "three four five six seven eight nine ten half twice times x".split()
)
#: names a generated program may not assign (builtins, keywords, the backward program's own)
_RESERVED = frozenset(dir(builtins)) | frozenset(keyword.kwlist) | {
    "x", "x_value", "sympy", "Eq", "solve", "symbols"}


class RefError(ValueError):
    """Why a reference solution gives no program; ``reason`` is the funnel's drop reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class QuestionNumber:
    """A number written in the question.

    Attributes:
        text: as written (``"1,000"``, ``"0.5"``).
        value: its exact value.
        start / end: character span in the question.
        standalone: not glued to letters, ``:``, ``/`` or ``%``-free ordinal suffixes
            (``3rd``, ``2x``, ``3:30``, ``1/2``); only standalone numbers may be changed.
    """

    text: str
    value: Fraction
    start: int
    end: int
    standalone: bool


@dataclass(frozen=True)
class InputConst:
    """A question constant used by the program.

    Attributes:
        name: the Python variable.
        value: exact value (from the question).
        literal: the Python literal written for it (``"48"``, ``"0.5"``).
        occurrences: how many times the value is written in the question.
    """

    name: str
    value: Fraction
    literal: str
    occurrences: int


@dataclass(frozen=True)
class Step:
    """One annotated computation.

    Attributes:
        name: the variable it assigns.
        tokens: the expression as ``(kind, text)`` pairs, kind ``op`` / ``lit`` / ``input`` /
            ``step`` (``text`` is the operator, the literal, or the bound variable name).
        claimed: the value the solution claims (None when it is not a plain number).
        claimed_text: the claim as written.
        line: index of the solution line the annotation is on.
    """

    name: str
    tokens: tuple[tuple[str, str], ...]
    claimed: Fraction | None
    claimed_text: str
    line: int

    def expression(self, names: dict[str, str] | None = None) -> str:
        """The Python expression; ``names`` maps input names to replacement code."""
        names = names or {}
        parts = []
        for kind, text in self.tokens:
            parts.append(names.get(text, text) if kind == "input" else text)
        return _spaced(parts)


@dataclass(frozen=True)
class RefProgram:
    """A program built from one reference solution.

    Attributes:
        inputs: question constants, in order of first use.
        steps: annotated computations up to and including the answer step.
        lines: the solution's lines (``#### N`` dropped), annotations still in them.
        literals: values written as literals in the program (not from the question).
        ambiguous: bindings that had more than one candidate (a number that two earlier
            steps both produced); the program may still verify, but is not augmented.
    """

    inputs: tuple[InputConst, ...]
    steps: tuple[Step, ...]
    lines: tuple[str, ...]
    literals: tuple[Fraction, ...] = field(default=())
    ambiguous: tuple[str, ...] = field(default=())

    @property
    def answer(self) -> Step:
        """The answer step (the last step)."""
        return self.steps[-1]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (values as strings)."""
        return {
            "inputs": [{"name": i.name, "value": str(i.value), "literal": i.literal,
                        "occurrences": i.occurrences} for i in self.inputs],
            "steps": [{"name": s.name, "tokens": [list(t) for t in s.tokens],
                       "claimed": None if s.claimed is None else str(s.claimed),
                       "claimed_text": s.claimed_text, "line": s.line} for s in self.steps],
            "lines": list(self.lines),
            "literals": [str(v) for v in self.literals],
            "ambiguous": list(self.ambiguous),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RefProgram:
        """Inverse of :meth:`to_dict`."""
        inputs = tuple(InputConst(i["name"], Fraction(i["value"]), i["literal"],
                                  int(i["occurrences"])) for i in d["inputs"])
        steps = tuple(Step(s["name"], tuple((k, t) for k, t in s["tokens"]),
                           None if s["claimed"] is None else Fraction(s["claimed"]),
                           s["claimed_text"], int(s["line"])) for s in d["steps"])
        return cls(inputs, steps, tuple(d["lines"]), tuple(Fraction(v) for v in d["literals"]),
                   tuple(d.get("ambiguous") or ()))


def parse_number(text: str) -> Fraction | None:
    """``"1,000"`` -> 1000, ``"$2.50"`` -> 5/2, ``".5"`` -> 1/2; None when not a plain number."""
    t = text.strip().replace(",", "").lstrip("$").rstrip(".").strip()
    if not re.fullmatch(r"-?(\d+\.?\d*|\.\d+)", t):
        return None
    return Fraction(t)


def question_numbers(question: str) -> list[QuestionNumber]:
    """Numbers written in ``question`` with their spans, in order."""
    out = []
    for m in QUESTION_NUMBER_RE.finditer(question):
        text = m.group(0)
        value = parse_number(text)
        if value is None:
            continue
        before = question[m.start() - 1:m.start()]
        after = question[m.end():m.end() + 1]
        standalone = not (after.isalpha() or after in (":", "/") or before in (":", "/")
                          or (after == "." and question[m.end() + 1:m.end() + 2].isdigit()))
        out.append(QuestionNumber(text, value, m.start(), m.end(), standalone))
    return out


def literal_of(value: Fraction, like: str = "") -> str:
    """A Python literal for ``value``, keeping the decimals of ``like`` (``"0.50"`` -> ``0.50``)."""
    if value.denominator == 1 and "." not in like:
        return str(value.numerator)
    places = len(like.split(".", 1)[1]) if "." in like else 0
    if places == 0:  # a non-integer given without decimals: shortest exact decimal
        places = 1
        while value * 10**places != int(value * 10**places) and places < 12:
            places += 1
    return f"{float(value):.{places}f}"


def tokenize(expr: str) -> list[tuple[str, str]]:
    """``"48/2"`` -> ``[("num", "48"), ("op", "/"), ("num", "2")]``.

    Raises:
        RefError: ``unparseable_annotation`` for anything but numbers, ``+ - * / ** ( )``.
    """
    pos, out = 0, []
    expr = expr.replace(",", "")
    while pos < len(expr):
        if expr[pos:].strip() == "":
            break
        m = _EXPR_TOKEN_RE.match(expr, pos)
        if m is None:
            raise RefError("unparseable_annotation", f"{expr!r} at {pos}")
        out.append(("num", m.group(1)) if m.group(1) else ("op", m.group(2)))
        pos = m.end()
    if not any(k == "num" for k, _ in out):
        raise RefError("unparseable_annotation", f"{expr!r} has no number")
    return out


def _name_bases(text: str, *, last: bool = False) -> list[str]:
    """Candidate names from the content words of the first (``last``: final) clause of ``text``.

    Two words first (``"24 clips in May"`` -> ``clips_may``), then three and four, so that a
    taken name grows by context instead of by a number.
    """
    if last:
        text = text[-60:]
        text = text.split(" ", 1)[1] if len(text) == 60 and " " in text else text
    else:
        text = text[:60]
    clauses = re.split(r"[.,;:?!()](?=\s|$)|\band\b", text)
    clause = clauses[-1] if last else clauses[0]
    words = [w.lower() for w in _WORD_RE.findall(clause)]
    content = [w for w in words if w not in _STOP and len(w) > 1]
    out = []
    for n in (2, 3, 4):
        part = content[-n:] if last else content[:n]
        base = "_".join(part)
        if base and base not in out and (n == 2 or len(part) == n):
            out.append(f"{base}_value" if base in _RESERVED or keyword.iskeyword(base) else base)
    return out


def fresh_name(bases: list[str], taken: set[str], fallback: str) -> str:
    """The first of ``bases`` not in ``taken``, else the first with a number (``x_2``).

    Numbered names are a last resort: programs full of ``pounds_2``, ``pounds_3`` teach a
    small model to enumerate names instead of computing (seen in the issue-12 benchmark).
    The name is added to ``taken``.
    """
    bases = bases or [fallback]
    name = next((b for b in bases if b not in taken), None)
    if name is None:
        base, k = bases[0], 2
        name = base
        while name in taken:
            name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


def name_from(text: str, taken: set[str], fallback: str, *, last: bool = False) -> str:
    """A fresh Python name from content words of the first clause of ``text``.

    The first two words (``last``: the final two): ``"24 clips in May"`` -> ``clips_may``;
    when that is taken, three or four words, then a numbered name; ``fallback`` when the
    clause has no content word.
    """
    return fresh_name(_name_bases(text, last=last), taken, fallback)


_NUM = r"\$?\d[\d,]*(?:\.\d+)?"
_OP = r"(?:\s*[-+*/×−÷]\s*|\s+x\s+)"
#: unannotated ``a op b = c`` (groups: expression, ``$``, result)
INLINE_RE = re.compile(
    rf"(?<![\w.<=])({_NUM}(?:{_OP}{_NUM})+)\s*=\s*(\$?)(\d[\d,]*(?:\.\d+)?)(?![\d<])")


def annotate_inline(line: str) -> str:
    """Annotate unannotated arithmetic: ``20/4 = $5`` -> ``20/4 = $<<20/4=5>>5``.

    Used when no annotation claims the gold answer (the solution's last step is often written
    without one). Only plain ``a op b op c = d`` chains outside existing annotations are
    marked; the program built from them is verified by execution like any other.
    """
    pieces = re.split(r"(<<[^<>]*>>)", line)
    out = []
    for piece in pieces:
        if piece.startswith("<<"):
            out.append(piece)
            continue

        def mark(m: re.Match[str]) -> str:
            expr = m.group(1).replace("×", "*").replace("−", "-").replace("÷", "/")
            expr = re.sub(r"\s+x\s+", "*", expr).replace("$", "").replace(",", "")
            value = m.group(3).replace(",", "")
            head = m.group(0)[:m.start(3) - m.start(0)]
            return f"{head}<<{expr.replace(' ', '')}={value}>>{m.group(3)}"

        out.append(INLINE_RE.sub(mark, piece))
    return "".join(out)


def parse_reference(question: str, solution: str, gold: str | None) -> RefProgram:
    """Build the program of a reference solution.

    Args:
        question: the problem text (input constants are looked up in it).
        solution: the reference solution with ``<<expr=value>>`` annotations (``#### N`` last).
        gold: the gold final answer.

    Returns:
        The RefProgram (not yet executed: it is not verified).

    Raises:
        RefError: with ``reason`` ``no_gold`` / ``no_annotations`` / ``unparseable_annotation``
            / ``no_answer_step`` (no step claims the gold value).
    """
    gold_value = parse_number(gold) if gold is not None else None
    if gold_value is None:
        raise RefError("no_gold", f"gold {gold!r} is not a plain number")
    lines = tuple(ln for ln in solution.strip().splitlines()
                  if ln.strip() and not ln.lstrip().startswith("####"))
    if not any(parse_number(c.rpartition("=")[2]) == gold_value
               for ln in lines for c in ANNOTATION_RE.findall(ln)):
        lines = tuple(annotate_inline(ln) for ln in lines)  # "so 20/4 = $5" written unmarked
    if not any(ANNOTATION_RE.search(ln) for ln in lines):
        raise RefError("no_annotations")
    qnums = question_numbers(question)
    by_value: dict[Fraction, int] = {}
    for q in qnums:
        by_value[q.value] = by_value.get(q.value, 0) + 1
    first_text: dict[Fraction, str] = {}
    for q in qnums:
        first_text.setdefault(q.value, q.text)
    taken: set[str] = set()
    used_steps: set[str] = set()
    ambiguous: list[str] = []
    inputs: dict[Fraction, InputConst] = {}
    steps: list[Step] = []
    literals: list[Fraction] = []
    for li, line in enumerate(lines):
        for m in ANNOTATION_RE.finditer(line):
            expr, sep, claim = m.group(1).rpartition("=")
            if not sep:
                raise RefError("unparseable_annotation", f"{m.group(0)!r} has no '='")
            tokens: list[tuple[str, str]] = []
            for kind, text in tokenize(expr):
                if kind == "op":
                    tokens.append(("op", text))
                    continue
                v = Fraction(text)
                same = [s for s in reversed(steps) if s.claimed == v]
                if same:  # the latest result not used yet, else the latest
                    prev = next((s for s in same if s.name not in used_steps), same[0])
                    if len({s.name for s in same}) > 1:
                        ambiguous.append(f"{text} is the result of {len(same)} steps")
                    used_steps.add(prev.name)
                    tokens.append(("step", prev.name))
                elif v in by_value:
                    if v not in inputs:
                        q = next(q for q in qnums if q.value == v)
                        name = name_from(question[q.end:], taken, f"n{len(inputs) + 1}")
                        inputs[v] = InputConst(name, v, literal_of(v, first_text[v]),
                                               by_value[v])
                    tokens.append(("input", inputs[v].name))
                else:
                    literals.append(v)
                    tokens.append(("lit", literal_of(v, text)))
            _check_syntax(tokens, m.group(0))
            name = _step_name(line, m, taken, len(steps) + 1)
            steps.append(Step(name, tuple(tokens), parse_number(claim), claim.strip(), li))
    answer_at = max((i for i, s in enumerate(steps) if s.claimed == gold_value), default=None)
    if answer_at is None:
        raise RefError("no_answer_step", f"no annotation claims the gold value {gold}")
    kept = steps[:answer_at + 1]
    used = {t for s in kept for k, t in s.tokens if k == "input"}
    ins = tuple(i for i in inputs.values() if i.name in used)
    return RefProgram(ins, tuple(kept), lines, tuple(literals), tuple(ambiguous))


def _check_syntax(tokens: list[tuple[str, str]], where: str) -> None:
    """Parse (never run) the expression; RefError ``unparseable_annotation`` if it is not one."""
    try:
        ast.parse(_spaced([t if k != "input" and k != "step" else "v" for k, t in tokens]),
                  mode="eval")
    except SyntaxError as e:
        raise RefError("unparseable_annotation", f"{where!r}: {e.msg}") from e


def _step_name(line: str, m: re.Match[str], taken: set[str], k: int) -> str:
    """From the words after the annotation, else the words before it, else ``step{k}``.

    A taken name tries the longer and the other side's names before a numbered one.
    """
    before = re.split(r"[.,;:?!](?=\s|$)", strip_annotations(line[:m.start()]))[-1]
    after, prior = _name_bases(line[m.end():]), _name_bases(before, last=True)
    bases = after + [b for b in prior if b not in after]
    return fresh_name(bases, taken, f"step{k}")


def _spaced(parts: list[str]) -> str:
    out = ""
    for i, p in enumerate(parts):
        unary = p == "-" and (i == 0 or parts[i - 1] in ("(", "+", "-", "*", "/", "**", "//"))
        if p in ("+", "-", "*", "/", "**", "//") and not unary:
            out += f" {p} "
        else:
            out += p
    return out.replace("( ", "(").replace(" )", ")").strip()


def input_lines(prog: RefProgram, values: dict[str, str] | None = None,
                only: set[str] | None = None) -> list[str]:
    """``name = literal`` lines; ``values`` replaces literals by name, ``only`` selects names."""
    values = values or {}
    return [f"{i.name} = {values.get(i.name, i.literal)}" for i in prog.inputs
            if only is None or i.name in only]


def pot_program(prog: RefProgram, values: dict[str, str] | None = None) -> str:
    """The PoT program: inputs, one statement per step, ``print`` of the answer.

    Args:
        prog: the program.
        values: input name -> replacement literal (numeric variation); None keeps the
            question's values.
    """
    body = input_lines(prog, values) + [f"{s.name} = {s.expression()}" for s in prog.steps]
    return "\n".join([*body, f"print({prog.answer.name})"]) + "\n"


def steps_program(prog: RefProgram, values: dict[str, str] | None = None) -> str:
    """:func:`pot_program` that prints every step's value (``repr``, one per line) instead."""
    body = input_lines(prog, values) + [f"{s.name} = {s.expression()}" for s in prog.steps]
    return "\n".join([*body, *(f"print(repr({s.name}))" for s in prog.steps)]) + "\n"


def strip_annotations(line: str) -> str:
    """A solution line without its ``<<...>>`` calculator annotations."""
    return ANNOTATION_RE.sub("", line)


@dataclass(frozen=True)
class TirCell:
    """One TIR cell: ``code`` to run (None: text only) and the ``text`` that follows its output.

    Attributes:
        code: the python block (inputs first used here, this line's steps, a print of each).
        text: the solution line, annotations removed (it states the results).
        steps: names printed by ``code``, in order.
    """

    code: str | None
    text: str
    steps: tuple[str, ...] = ()


def tir_cells(prog: RefProgram) -> list[TirCell]:
    """The TIR cells: one per solution line up to the answer step's line."""
    last = prog.answer.line
    defined: set[str] = set()
    cells = []
    for li, line in enumerate(prog.lines[:last + 1]):
        steps = [s for s in prog.steps if s.line == li]
        text = strip_annotations(line).strip()
        if not steps:
            cells.append(TirCell(None, text))
            continue
        need = {t for s in steps for k, t in s.tokens if k == "input"} - defined
        defined |= need
        code = input_lines(prog, only=need) + [f"{s.name} = {s.expression()}" for s in steps]
        code += [f"print({s.name})" for s in steps]
        cells.append(TirCell("\n".join(code), text, tuple(s.name for s in steps)))
    return cells


def matches_claim(output: str, claimed: Fraction | None, claimed_text: str) -> bool:
    """Whether a printed value agrees with the solution's claim, to the claim's precision.

    ``3.3333333333333335`` agrees with ``3.33`` and ``24.0`` with ``24``; a claim that is not a
    plain number agrees with nothing.
    """
    value = parse_number(output)
    if value is None or claimed is None:
        return False
    t = claimed_text.replace(",", "").lstrip("$")
    places = len(t.split(".", 1)[1]) if "." in t else 0
    return abs(value - claimed) <= Fraction(1, 2 * 10**places) + abs(claimed) * Fraction(1, 10**9)
