r"""Record layouts of the math sets users bring, detected per record, plus explicit field mapping.

A layout says where a record keeps its question, its gold answer and its id. The first
layout (in the order of :data:`LAYOUTS`) whose required keys a record has is used:

* ``svamp``: question ``Body`` + " " + ``Question``; gold ``Answer`` (a number); id ``ID``.
* ``asdiv``: question ``body`` + " " + ``question``; gold ``answer`` (``"9 (apples)"``).
* ``olympiadbench``: ``question``; gold ``final_answer`` (a list: one answer or a set).
* ``multiple_choice``: ``question``/``problem`` with ``options``/``choices`` (a list, or a
  letter -> text mapping) lettered (A), (B), ... into the question; gold ``answer`` /
  ``correct`` / ``label``: a letter (``"B"``, ``"(B)"``, ``"B) 21"``) or a 0-based index.
* ``math`` (MATH, MATH-500 from the hub, Minerva-Math): ``problem``; gold the ``answer``
  column when present, else the last box of ``solution``; id ``unique_id``.
* ``qa`` (GSM8K, AIME, AMC, college-math, our MATH-500 copy, anything question+answer):
  ``question``/``problem``/``Problem``/``Question``; gold ``answer``/``Answer``/
  ``final_answer``/``solution``/``Solution``.

Ids are taken from ``id``/``ID``/``unique_id``/``idx``/``problem_id``/``question_id``/``uid``
when present, else the loader hashes the question.

Anything else is mapped explicitly with a :class:`FieldMap` (``--question-field``,
``--answer-field``, ``--id-field``): a dotted path (``data.problem``) or, for the question, a
template of dotted paths (``"{Body} {Question}"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from verimath.records import RecordError

__all__ = ["LAYOUTS", "FieldMap", "Layout", "MappedRecord", "detect_layout", "map_record"]

_TEMPLATE_RE = re.compile(r"\{([A-Za-z_][\w.]*)\}")
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ID_KEYS = ("id", "ID", "unique_id", "idx", "problem_id", "question_id", "uid")


@dataclass(frozen=True)
class FieldMap:
    """Explicit field mapping; None fields fall back to the detected layout.

    Attributes:
        question: a dotted path (``"problem"``, ``"data.text"``) or a template of dotted
            paths in braces (``"{Body} {Question}"``).
        answer: dotted path of the gold answer field (a solution text, a bare answer, a
            number or a list; see :func:`verimath.gold.explain_gold`).
        id: dotted path of the id field (None: the layout's id, else a hash of the question).
    """

    question: str | None = None
    answer: str | None = None
    id: str | None = None

    def __post_init__(self) -> None:
        for name in ("question", "answer", "id"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, str) or not v.strip()):
                raise ValueError(f"{name}_field must be a non-empty string (a dotted path) or null")
            if name != "question" and v is not None and "{" in v:
                raise ValueError(f"{name}_field takes a dotted path, not a template: {v!r}")

    @property
    def empty(self) -> bool:
        """True when nothing is mapped explicitly."""
        return self.question is None and self.answer is None and self.id is None


@dataclass(frozen=True)
class Layout:
    """Where one record layout keeps its fields.

    Attributes:
        name: the layout's name (recorded in ``Problem.meta["layout"]``).
        requires: keys a record must have (all of them) for the layout to apply.
        question: dotted paths tried in order, or one template (``"{Body} {Question}"``).
        answer: gold fields tried in order (the first present one is used).
        ids: id fields tried in order.
        options: fields holding multiple-choice options (lettered into the question).
    """

    name: str
    requires: tuple[str, ...]
    question: tuple[str, ...]
    answer: tuple[str, ...]
    ids: tuple[str, ...] = _ID_KEYS
    options: tuple[str, ...] = ()


LAYOUTS: tuple[Layout, ...] = (
    Layout("svamp", ("Body", "Question"), ("{Body} {Question}",), ("Answer", "answer")),
    Layout("asdiv", ("body", "question"), ("{body} {question}",), ("answer",)),
    Layout("olympiadbench", ("question", "final_answer"), ("question",), ("final_answer",)),
    Layout("multiple_choice", ("options",), ("question", "problem"),
           ("answer", "correct", "label"), options=("options",)),
    Layout("multiple_choice", ("choices",), ("question", "problem"),
           ("answer", "correct", "label"), options=("choices",)),
    Layout("math", ("problem", "solution"), ("problem",), ("answer", "solution"),
           ("unique_id", *_ID_KEYS)),
    Layout("qa", (), ("question", "problem", "Problem", "Question"),
           ("answer", "Answer", "final_answer", "solution", "Solution")),
)


def get_path(rec: dict[str, Any], dotted: str) -> Any:
    """``rec["a"]["b"]`` for ``"a.b"``; a key containing dots is tried whole first.

    Raises:
        KeyError: some part of the path is absent (or not a mapping).
    """
    if dotted in rec:
        return rec[dotted]
    cur: Any = rec
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise KeyError(dotted)
        cur = cur[part]
    return cur


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _question(rec: dict[str, Any], specs: tuple[str, ...], where: str) -> tuple[str, str]:
    """(question text, field name) from the first spec that resolves; RecordError if none."""
    for spec in specs:
        if "{" in spec:
            parts = []
            for name in _TEMPLATE_RE.findall(spec):
                try:
                    parts.append((name, _text(get_path(rec, name))))
                except KeyError:
                    raise RecordError(where, name, "missing (used by the question template "
                                                   f"{spec!r})") from None
            bad = [n for n, v in parts if v is None]
            if bad:
                raise RecordError(where, bad[0], "missing or not a non-empty string")
            text = _TEMPLATE_RE.sub(_filler(dict(parts)), spec)
            return re.sub(r"[ \t]+", " ", text).strip(), spec
        try:
            value = get_path(rec, spec)
        except KeyError:
            continue
        if not isinstance(value, str) or not value.strip():
            raise RecordError(where, spec, "missing or not a non-empty string")
        return value.strip(), spec
    raise RecordError(where, specs[0] if len(specs) == 1 else "question",
                      f"missing or not a non-empty string (looked for {list(specs)})")


def _filler(values: dict[str, str | None]) -> Any:
    return lambda m: values[m.group(1)]


def _options(value: Any, where: str, name: str) -> list[tuple[str, str]]:
    """``[(letter, text)]`` from a list (``["21", ...]`` or ``["A) 21", ...]``) or a dict."""
    if isinstance(value, dict):
        return [(str(k).strip(), str(v).strip()) for k, v in value.items()]
    if not isinstance(value, list) or not value or len(value) > len(_LETTERS):
        raise RecordError(where, name, "not a non-empty list (or mapping) of options")
    out = []
    for i, opt in enumerate(value):
        s = str(opt).strip()
        m = re.match(rf"^\(?([{_LETTERS[i]}])\s*[).:]\s*(.*)$", s)
        out.append((_LETTERS[i], m.group(2).strip() if m else s))
    return out


def _choice_gold(value: Any, letters: list[str]) -> str | None:
    """A multiple-choice gold as its letter: ``"B"``, ``"(B)"``, ``"B) 21"`` or an index."""
    if isinstance(value, int) and not isinstance(value, bool):
        return letters[value] if 0 <= value < len(letters) else None
    if isinstance(value, str):
        m = re.match(r"^\s*\(?([A-Za-z])\s*(?:[).:]|$)", value)
        if m and m.group(1).upper() in letters:
            return m.group(1).upper()
    return None


@dataclass(frozen=True)
class MappedRecord:
    """A record's question, gold field and id, as a layout or a FieldMap says.

    Attributes:
        layout: the layout name (``"mapped"`` when a FieldMap set the question or answer).
        question: the question text (options appended for multiple choice).
        answer_field: name of the gold field used; None when the record has none.
        answer_value: that field's raw value (None when absent).
        choice: the multiple-choice gold letter when the layout is ``multiple_choice``.
        id: the record's id as a string; None when it has none (the loader hashes the question).
        options: the lettered options (multiple choice), else empty.
    """

    layout: str
    question: str
    answer_field: str | None
    answer_value: Any
    id: str | None
    choice: str | None = None
    options: tuple[tuple[str, str], ...] = ()


def detect_layout(rec: dict[str, Any]) -> Layout:
    """The first layout of :data:`LAYOUTS` whose required keys ``rec`` has (``qa`` at worst)."""
    return next(lay for lay in LAYOUTS if all(k in rec for k in lay.requires))


def map_record(rec: dict[str, Any], where: str, fields: FieldMap | None = None) -> MappedRecord:
    """Find question, gold field and id of one raw record.

    Args:
        rec: the raw record (JSON object / Parquet row / hub example).
        where: ``source:line`` for error messages.
        fields: explicit mapping; its set fields win over the detected layout.

    Raises:
        RecordError: the question is missing or not text, a mapped field is absent, or the
            multiple-choice options are malformed; names the line and the field.
    """
    fields = fields or FieldMap()
    lay = detect_layout(rec)
    qspecs = (fields.question,) if fields.question else lay.question
    question, _ = _question(rec, qspecs, where)
    aspecs = (fields.answer,) if fields.answer else lay.answer
    answer_field, answer_value = None, None
    for spec in aspecs:
        try:
            answer_value = get_path(rec, spec)
        except KeyError:
            continue
        answer_field = spec
        if answer_value is not None or fields.answer:
            break
    if fields.answer and answer_field is None:
        raise RecordError(where, fields.answer, "missing (named by --answer-field)")
    rid: str | None = None
    for spec in (fields.id,) if fields.id else lay.ids:
        try:
            rid = _text(get_path(rec, spec))
        except KeyError:
            continue
        if rid is not None:
            break
    if fields.id and rid is None:
        raise RecordError(where, fields.id, "missing or empty (named by --id-field)")
    name = "mapped" if fields.question or fields.answer else lay.name
    if not lay.options:
        return MappedRecord(name, question, answer_field, answer_value, rid)
    opt_field = lay.options[0]
    opts = _options(rec[opt_field], where, opt_field)
    letters = [k for k, _ in opts]
    text = question + "\n" + "\n".join(f"({k}) {v}" for k, v in opts)
    choice = _choice_gold(answer_value, letters) if answer_value is not None else None
    return MappedRecord(name, text, answer_field, answer_value, rid, choice, tuple(opts))
