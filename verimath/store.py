"""Atomic file writes and JSONL reading (DESIGN.md house style §12).

The keyed, locked, append-only store of long jobs is :class:`verimath.jobs.JobStore`.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` through a temp file in the same folder and ``os.replace``."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """``atomic_write_text`` of ``json.dumps(obj, indent=2)``."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def __getattr__(name: str) -> Any:
    """``ResultStore`` is the old name of :class:`verimath.jobs.JobStore` (kept for callers)."""
    if name == "ResultStore":
        from verimath.jobs import JobStore

        return JobStore
    raise AttributeError(name)


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any] | Exception]]:
    """Yield ``(line_number, record_or_error)`` for each non-blank line (1-based line numbers).

    A line that is not a JSON object yields a ``ValueError`` naming the file and line instead
    of raising, so callers can report bad records and go on.
    """
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                yield i, ValueError(f"{path}:{i}: not valid JSON ({e.msg})")
                continue
            if not isinstance(rec, dict):
                yield i, ValueError(f"{path}:{i}: expected a JSON object")
                continue
            yield i, rec
