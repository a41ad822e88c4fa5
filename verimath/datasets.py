"""Benchmark and problem-set loading into :class:`~verimath.records.Problem`.

A spec is a short benchmark id, a local file, or a hub dataset id:

==================  ================================  =============================================
spec                offline (``$VERIMATH_DATA``/...)  hub (users with network): id, config, split
==================  ================================  =============================================
``gsm8k``           ``gsm8k/test.jsonl``              ``openai/gsm8k``, main, test
``gsm8k_train``     ``gsm8k/train.jsonl``             ``openai/gsm8k``, main, train
``math500``         ``math500/test.jsonl``            ``HuggingFaceH4/MATH-500``, test
``math``            ``math/test.jsonl``               ``DigitalLearningGmbH/MATH-lighteval``, test
``svamp``           ``svamp/test.jsonl``              ``ChilleD/SVAMP``, test
``asdiv``           ``asdiv/test.jsonl``              ``EleutherAI/asdiv``, asdiv, validation
``aime24``          ``aime24/test.jsonl``             ``HuggingFaceH4/aime_2024``, train
``amc23``           ``amc23/test.jsonl``              ``zwhe99/amc23``, test
``minerva_math``    ``minerva_math/test.jsonl``       ``math-ai/minervamath``, test
``olympiadbench``   ``olympiadbench/test.jsonl``      ``Hothan/OlympiadBench``, OE_TO_maths_en_COMP
``minif2f``         ``minif2f/minif2f.jsonl``         (DeepSeek-Prover release)
``proofnet``        ``proofnet/proofnet.jsonl``       (DeepSeek-Prover release)
==================  ================================  =============================================

``$VERIMATH_DATA`` defaults to ``../shared/data`` next to the checkout. Each record's layout
(GSM8K, MATH, SVAMP, ASDiv, AIME/AMC, OlympiadBench, multiple choice, ...) is detected per
record (:mod:`verimath.layouts`) or mapped explicitly (:class:`~verimath.layouts.FieldMap`);
the gold answer is extracted at load time by the one gold extractor,
:func:`verimath.gold.explain_gold`. A bad record never aborts loading: it becomes a
:class:`RecordError` naming line and field, and a record whose gold cannot be extracted is
such a bad record (reported before any generation), unless ``allow_missing_gold`` keeps it,
marked. Problem ids are unique by construction (see :func:`problems_from_records`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verimath.gold import GoldResult, explain_gold
from verimath.layouts import FieldMap, MappedRecord, map_record
from verimath.records import Problem, RecordError, content_hash

log = logging.getLogger(__name__)

_LOCAL = {
    "gsm8k": "gsm8k/test.jsonl",
    "gsm8k_train": "gsm8k/train.jsonl",
    "math500": "math500/test.jsonl",
    "math": "math/test.jsonl",
    "svamp": "svamp/test.jsonl",
    "asdiv": "asdiv/test.jsonl",
    "aime24": "aime24/test.jsonl",
    "amc23": "amc23/test.jsonl",
    "minerva_math": "minerva_math/test.jsonl",
    "olympiadbench": "olympiadbench/test.jsonl",
    "minif2f": "minif2f/minif2f.jsonl",
    "proofnet": "proofnet/proofnet.jsonl",
}
#: benchmark id -> (hub dataset id, config name, split); the layout is detected per record
_HUB = {
    "gsm8k": ("openai/gsm8k", "main", "test"),
    "gsm8k_train": ("openai/gsm8k", "main", "train"),
    "math500": ("HuggingFaceH4/MATH-500", None, "test"),
    "math": ("DigitalLearningGmbH/MATH-lighteval", None, "test"),
    "svamp": ("ChilleD/SVAMP", None, "test"),
    "asdiv": ("EleutherAI/asdiv", "asdiv", "validation"),
    "aime24": ("HuggingFaceH4/aime_2024", None, "train"),
    "amc23": ("zwhe99/amc23", None, "test"),
    "minerva_math": ("math-ai/minervamath", None, "test"),
    "olympiadbench": ("Hothan/OlympiadBench", "OE_TO_maths_en_COMP", "train"),
}
BENCHMARKS = tuple(_LOCAL)


@dataclass(frozen=True)
class DuplicateId:
    """Two records of one input with the same problem id; the later one was renamed.

    Attributes:
        id: the id both records had.
        first: ``source:line`` of the record that kept ``id``.
        where: ``source:line`` of the later record.
        new_id: the later record's id after the deterministic suffix (``<id>~2``, ``~3``...).
    """

    id: str
    first: str
    where: str
    new_id: str


@dataclass
class LoadResult:
    """Problems loaded from a spec, plus the records that could not be used.

    Attributes:
        problems: valid problems in file order (after ``split`` / ``limit``); ids are unique.
        errors: one RecordError per bad record (line number and field named), including
            records whose gold answer could not be extracted (unless ``allow_missing_gold``).
        source: the resolved path or hub id.
        duplicates: records whose id an earlier record already had (both lines named); they
            were kept under a suffixed id.
        missing_gold: problems kept without a gold answer (``allow_missing_gold``); each has
            ``meta["gold_missing"]`` saying why.
    """

    problems: list[Problem]
    errors: list[RecordError] = field(default_factory=list)
    source: str = ""
    duplicates: list[DuplicateId] = field(default_factory=list)
    missing_gold: int = 0


def data_root() -> Path:
    """Folder of the offline benchmark copies: ``$VERIMATH_DATA`` or ``<repo>/../shared/data``."""
    env = os.environ.get("VERIMATH_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _formal(rec: dict[str, Any], where: str, source: str) -> Problem:
    """A miniF2F / ProofNet-style record (``name``, ``formal_statement``, ...)."""
    for k in ("name", "formal_statement"):
        if not isinstance(rec.get(k), str) or not rec[k].strip():
            raise RecordError(where, k, "missing or not a non-empty string")
    informal = rec.get("informal_prefix") or rec.get("informal") or ""
    informal = re.sub(r"^/--\s*|\s*-/\s*$", "", str(informal).strip())
    formal_meta: dict[str, Any] = {k: rec[k] for k in ("split", "goal") if k in rec}
    return Problem(
        id=rec["name"], source=source, informal=informal,
        formal_statement=rec["formal_statement"], header=rec.get("header"), meta=formal_meta,
    )


def _gold(m: MappedRecord, where: str) -> GoldResult:
    """The gold of a mapped record; the reason names the field when there is none."""
    if m.answer_field is None:
        return GoldResult(None, "no answer field (looked for the layout's answer fields)")
    if m.options:
        if m.choice is None:
            letters = "".join(k for k, _ in m.options)
            return GoldResult(None, f"{m.answer_value!r} is not an option letter ({letters}) "
                                    "or index")
        return GoldResult(m.choice)
    return explain_gold(m.answer_value)


def _normalize(
    rec: dict[str, Any], where: str, source: str, fields: FieldMap | None,
    allow_missing_gold: bool,
) -> Problem:
    """Map one raw record (any layout of :mod:`verimath.layouts`, miniF2F, a Problem)."""
    if (fields is None or fields.empty) and "formal_statement" in rec and "name" in rec:
        return _formal(rec, where, source)
    if (fields is None or fields.empty) and {"id", "source", "informal"} <= rec.keys():
        p = Problem.from_dict(rec, where)  # already a verimath Problem
        if p.answer is None and not p.formal_statement and not allow_missing_gold:
            raise RecordError(where, "answer", "no gold answer (null); use "
                                               "--allow-missing-gold to keep such problems")
        return p
    m = map_record(rec, where, fields)
    gold = _gold(m, where)
    meta: dict[str, Any] = {"layout": m.layout}
    if gold.answer is None:
        if not allow_missing_gold:
            raise RecordError(where, m.answer_field or "answer",
                              f"no gold answer could be extracted: {gold.why}")
        meta["gold_missing"] = gold.why
    for k in ("solution", "Equation", "formula"):
        if isinstance(rec.get(k), str):
            meta[k.lower()] = rec[k]
    if isinstance(m.answer_value, str) and "\n" in m.answer_value:
        meta.setdefault("solution", m.answer_value)  # a GSM8K-style answer is a solution
    if m.options:
        meta["options"] = dict(m.options)
    for k in ("level", "subject", "type", "unique_id", "split", "Type", "year", "url"):
        if k in rec and isinstance(rec[k], str | int | float):
            meta[k.lower()] = rec[k]
    pid = m.id if m.id is not None else content_hash(m.question)
    return Problem(id=pid, source=source, informal=m.question, answer=gold.answer, meta=meta)


def problems_from_records(
    records: Iterable[tuple[int, dict[str, Any] | Exception]], source: str, *,
    fields: FieldMap | None = None, allow_missing_gold: bool = False,
) -> LoadResult:
    """Normalize ``(line_number, record_or_error)`` pairs; bad ones go to ``errors``.

    Ids are made unique here: a record whose id an earlier record already has (the same
    question text hashes to the same id; a source id repeated) keeps its place under
    ``<id>~2`` (``~3``, ... the first suffix not taken), and the pair is reported in
    ``duplicates`` and logged with both line numbers. The suffix depends only on the order
    of records in the input, so a re-run (resume) gives the same ids.

    Args:
        records: pairs as :func:`verimath.store.read_jsonl` yields them.
        source: path or hub id, used in ``Problem.source`` and error locations.
        fields: explicit field mapping (None: detect the layout per record).
        allow_missing_gold: keep informal problems whose gold cannot be extracted (answer
            None, ``meta["gold_missing"]`` says why) instead of reporting them as errors.
    """
    out = LoadResult(problems=[], source=source)
    first: dict[str, str] = {}
    for line, rec in records:
        where = f"{source}:{line}"
        if isinstance(rec, Exception):
            out.errors.append(RecordError(where, "<line>", str(rec)))
            continue
        if not isinstance(rec, dict):
            out.errors.append(RecordError(where, "<record>", "not a JSON object"))
            continue
        try:
            p = _normalize(rec, where, source, fields, allow_missing_gold)
        except RecordError as e:
            out.errors.append(e)
            continue
        if p.id in first:
            new_id, k = p.id, 2
            while (new_id := f"{p.id}~{k}") in first:
                k += 1
            dup = DuplicateId(p.id, first[p.id], where, new_id)
            log.warning("duplicate problem id %s at %s (first at %s): kept as %s",
                        p.id, where, dup.first, new_id)
            out.duplicates.append(dup)
            p = dataclasses.replace(p, id=new_id, meta={**p.meta, "duplicate_of": dup.first})
        first[p.id] = where
        out.missing_gold += "gold_missing" in p.meta
        out.problems.append(p)
    return out


def load_problems(
    spec: str, *, split: str | None = None, limit: int | None = None,
    fields: FieldMap | None = None, allow_missing_gold: bool = False,
) -> LoadResult:
    """Load problems from a benchmark id, a local ``.jsonl`` / ``.parquet`` file, or a hub id.

    Args:
        spec: a benchmark id of :data:`BENCHMARKS` (``gsm8k``, ``math500``, ``svamp``, ...;
            the local copy under :func:`data_root` when there is one, else its hub dataset) |
            a path | a hub dataset id (``owner/name``, loaded with ``datasets.load_dataset``).
        split: keep only records whose ``split`` field equals this (miniF2F ``valid``/``test``);
            for hub ids, the dataset split (default: the benchmark's, else ``test``). None
            keeps everything.
        limit: keep the first ``limit`` problems (after ``split``); None keeps all.
        fields: explicit question / answer / id mapping (None: detect the layout per record,
            see :mod:`verimath.layouts`).
        allow_missing_gold: keep problems whose gold answer cannot be extracted, marked with
            ``meta["gold_missing"]`` (for runs that need no gold, e.g. self-consistency).

    Returns:
        A LoadResult; malformed records (including unusable gold) are in ``errors``, never
        raised; ids are unique (see :func:`problems_from_records`).

    Raises:
        FileNotFoundError: the spec is neither a known benchmark with a local copy, nor an
            existing file, nor loadable from the hub (offline), with a hint how to fix it.
    """
    from verimath.store import read_jsonl

    opts: dict[str, Any] = {"fields": fields, "allow_missing_gold": allow_missing_gold}
    path: Path | None = None
    if spec in _LOCAL and (data_root() / _LOCAL[spec]).exists():
        path = data_root() / _LOCAL[spec]
    elif Path(spec).exists():
        path = Path(spec)
    if path is not None and path.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
        result = problems_from_records(enumerate(rows, 1), str(path), **opts)
    elif path is not None:
        result = problems_from_records(read_jsonl(path), str(path), **opts)
    elif spec.endswith((".jsonl", ".json", ".parquet")):
        raise FileNotFoundError(f"benchmark file not found: {spec} (a path, relative to "
                                f"{Path.cwd()}; built-in ids: {sorted(_LOCAL)})")
    else:
        result = _load_hub(spec, split, opts)
    if split is not None and path is not None:
        result.problems = [p for p in result.problems if p.meta.get("split", split) == split]
    if limit is not None:
        result.problems = result.problems[:limit]
    return result


def _load_hub(spec: str, split: str | None, opts: dict[str, Any]) -> LoadResult:
    hub_id, name, default_split = _HUB.get(spec, (spec, None, "test"))
    if "/" not in hub_id:
        raise FileNotFoundError(
            f"unknown benchmark {spec!r}: use one of {list(_LOCAL)} (with $VERIMATH_DATA "
            f"pointing at local copies, now {data_root()}), a .jsonl/.parquet path, or a hub id"
        )
    import datasets

    try:
        ds = datasets.load_dataset(hub_id, name, split=split or default_split)
    except Exception as e:  # hub unreachable / unknown id: say how to fix
        local = _LOCAL.get(spec, "<file>.jsonl")
        raise FileNotFoundError(
            f"could not load {hub_id!r}{f' (config {name!r})' if name else ''} from the hub "
            f"({type(e).__name__}: {e}); offline, put a copy at $VERIMATH_DATA/{local} "
            f"(now {data_root()}) or pass a .jsonl/.parquet path"
        ) from e
    return problems_from_records(enumerate(ds, 1), hub_id, **opts)
