"""Benchmark and problem-set loading into :class:`~verimath.records.Problem`.

A spec is a short benchmark id, a local file, or a hub dataset id:

=================  ===========================================  ==============================
spec               offline (``$VERIMATH_DATA``/...)              hub (users with network)
=================  ===========================================  ==============================
``gsm8k``          ``gsm8k/test.jsonl``                         ``openai/gsm8k`` (main, test)
``gsm8k_train``    ``gsm8k/train.jsonl``                        ``openai/gsm8k`` (main, train)
``math500``        ``math500/test.jsonl``                       ``HuggingFaceH4/MATH-500``
``minif2f``        ``minif2f/minif2f.jsonl``                    (DeepSeek-Prover release)
``proofnet``       ``proofnet/proofnet.jsonl``                  (DeepSeek-Prover release)
=================  ===========================================  ==============================

``$VERIMATH_DATA`` defaults to ``../shared/data`` next to the checkout. Gold answers are taken
from each dataset's own answer format (GSM8K ``#### N``; MATH-500 ``The answer is: X`` or the
hub's ``answer`` column); the full solution is kept in ``Problem.meta["solution"]``.
A bad record never aborts loading: it becomes a :class:`RecordError` naming line and field.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verimath.records import Problem, RecordError, content_hash

_LOCAL = {
    "gsm8k": "gsm8k/test.jsonl",
    "gsm8k_train": "gsm8k/train.jsonl",
    "math500": "math500/test.jsonl",
    "minif2f": "minif2f/minif2f.jsonl",
    "proofnet": "proofnet/proofnet.jsonl",
}
_HUB = {
    "gsm8k": ("openai/gsm8k", "main", "test"),
    "gsm8k_train": ("openai/gsm8k", "main", "train"),
    "math500": ("HuggingFaceH4/MATH-500", None, "test"),
}
BENCHMARKS = tuple(_LOCAL)


@dataclass
class LoadResult:
    """Problems loaded from a spec, plus the records that could not be used.

    Attributes:
        problems: valid problems in file order (after ``split`` / ``limit``).
        errors: one RecordError per bad record (line number and field named).
        source: the resolved path or hub id.
    """

    problems: list[Problem]
    errors: list[RecordError] = field(default_factory=list)
    source: str = ""


def data_root() -> Path:
    """Folder of the offline benchmark copies: ``$VERIMATH_DATA`` or ``<repo>/../shared/data``."""
    env = os.environ.get("VERIMATH_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def gsm8k_gold(solution: str) -> str | None:
    """The number after GSM8K's ``####`` marker, commas removed; None if absent."""
    m = re.search(r"####\s*(.+?)\s*$", solution.strip())
    return m.group(1).replace(",", "").strip() if m else None


def math_gold(solution: str) -> str | None:
    """The text after a MATH-500 solution's trailing ``The answer is:``; None if absent."""
    m = re.search(r"The answer is:?\s*(.+?)\s*$", solution.strip())
    return m.group(1).strip() if m else None


def _normalize(rec: dict[str, Any], where: str, source: str) -> Problem:
    """Map one raw record (GSM8K, MATH, miniF2F-style or verimath Problem) to a Problem."""
    if "formal_statement" in rec and "name" in rec:  # miniF2F / ProofNet style
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
    if "id" in rec and "source" in rec:  # already a verimath Problem
        return Problem.from_dict(rec, where)
    question = rec.get("question", rec.get("problem"))
    if not isinstance(question, str) or not question.strip():
        raise RecordError(where, "question", "missing or not a non-empty string")
    solution = rec.get("solution", rec.get("answer"))
    answer: str | None = None
    if "solution" in rec and isinstance(rec.get("answer"), str):  # hub MATH-500: answer column
        answer = rec["answer"].strip()
    elif isinstance(solution, str):
        answer = gsm8k_gold(solution) if "####" in solution else math_gold(solution)
        if answer is None and "\n" not in solution.strip():
            answer = solution.strip()  # a bare gold answer
    elif solution is not None:
        raise RecordError(where, "answer", "not a string")
    meta: dict[str, Any] = {"solution": solution} if isinstance(solution, str) else {}
    for k in ("level", "subject", "type", "unique_id", "split"):
        if k in rec:
            meta[k] = rec[k]
    pid = str(rec.get("id") or rec.get("unique_id") or content_hash(question))
    return Problem(id=pid, source=source, informal=question, answer=answer, meta=meta)


def problems_from_records(
    records: Iterable[tuple[int, dict[str, Any] | Exception]], source: str
) -> LoadResult:
    """Normalize ``(line_number, record_or_error)`` pairs; bad ones go to ``errors``."""
    out = LoadResult(problems=[], source=source)
    for line, rec in records:
        where = f"{source}:{line}"
        if isinstance(rec, Exception):
            out.errors.append(RecordError(where, "<line>", str(rec)))
            continue
        try:
            out.problems.append(_normalize(rec, where, source))
        except RecordError as e:
            out.errors.append(e)
    return out


def load_problems(spec: str, *, split: str | None = None, limit: int | None = None) -> LoadResult:
    """Load problems from a benchmark id, a local ``.jsonl`` / ``.parquet`` file, or a hub id.

    Args:
        spec: ``gsm8k`` | ``gsm8k_train`` | ``math500`` | ``minif2f`` | ``proofnet`` | a path |
            a hub dataset id (``owner/name``, loaded with ``datasets.load_dataset``).
        split: keep only records whose ``split`` field equals this (miniF2F ``valid``/``test``);
            for hub ids, the dataset split (default ``test``). None keeps everything.
        limit: keep the first ``limit`` problems (after ``split``); None keeps all.

    Returns:
        A LoadResult; malformed records are in ``errors``, never raised.

    Raises:
        FileNotFoundError: the spec is neither a known benchmark with a local copy, nor an
            existing file, nor loadable from the hub (offline), with a hint how to fix it.
    """
    from verimath.store import read_jsonl

    path: Path | None = None
    if spec in _LOCAL and (data_root() / _LOCAL[spec]).exists():
        path = data_root() / _LOCAL[spec]
    elif Path(spec).exists():
        path = Path(spec)
    if path is not None and path.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
        result = problems_from_records(enumerate(rows, 1), str(path))
    elif path is not None:
        result = problems_from_records(read_jsonl(path), str(path))
    else:
        result = _load_hub(spec, split)
    if split is not None and path is not None:
        result.problems = [p for p in result.problems if p.meta.get("split", split) == split]
    if limit is not None:
        result.problems = result.problems[:limit]
    return result


def _load_hub(spec: str, split: str | None) -> LoadResult:
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
        raise FileNotFoundError(
            f"could not load {hub_id!r} from the hub ({type(e).__name__}: {e}); offline, set "
            f"$VERIMATH_DATA to a folder with {_LOCAL.get(spec, '<file>.jsonl')} or pass a path"
        ) from e
    return problems_from_records(enumerate(ds, 1), hub_id)
