"""Append-only, resumable JSONL stores and atomic file writes (DESIGN.md house style §12).

A long job writes one JSON line per work item, keyed by a content hash, and flushes + fsyncs
after each. A killed job leaves at most one torn last line, which :class:`ResultStore` ignores
(and truncates away) on reopen, so resuming loses nothing that was written and duplicates
nothing.
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


class ResultStore:
    """Append-only JSONL of ``{"key": ..., **record}`` lines with resume support.

    Args:
        path: the JSONL file; created (with parents) if missing.
        key_field: the field holding each record's unique key (default ``"key"``).

    On open, existing complete lines are indexed; a torn final line (from a kill mid-write) is
    cut off. ``add`` of a key already present is a no-op returning False, so a resumed run can
    simply skip done keys (``key in store``).
    """

    def __init__(self, path: str | os.PathLike[str], key_field: str = "key") -> None:
        self.path = Path(path)
        self.key_field = key_field
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._records: dict[str, dict[str, Any]] = {}
        self._load()
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def _load(self) -> None:
        if not self.path.exists():
            return
        good_bytes = 0
        with open(self.path, "rb") as f:
            for raw in f:
                if not raw.endswith(b"\n"):
                    break
                try:
                    rec = json.loads(raw)
                except json.JSONDecodeError:
                    break
                self._records.setdefault(str(rec[self.key_field]), rec)
                good_bytes += len(raw)
        if good_bytes != self.path.stat().st_size:
            log.warning("%s: dropping a torn last line left by an interrupted run", self.path)
            with open(self.path, "r+b") as f:
                f.truncate(good_bytes)

    def __contains__(self, key: object) -> bool:
        return key in self._records

    def __len__(self) -> int:
        return len(self._records)

    def get(self, key: str) -> dict[str, Any] | None:
        """The record stored under ``key``, or None."""
        return self._records.get(key)

    def records(self) -> Iterator[dict[str, Any]]:
        """All records in the order they were first written."""
        return iter(self._records.values())

    def add(self, key: str, record: dict[str, Any]) -> bool:
        """Append ``record`` under ``key`` (durably). Returns False if ``key`` was already done."""
        if key in self._records:
            return False
        rec = {self.key_field: key, **record}
        line = json.dumps(rec, ensure_ascii=False, default=str)
        self._fh.write(line + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._records[key] = rec
        return True

    def close(self) -> None:
        """Close the file handle."""
        self._fh.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
