"""Exact deduplication by normalized-text hash.

Two problems are duplicates when their texts are equal after :func:`normalize_text`
(Unicode NFKC, case folding, whitespace collapsed, spaces around punctuation removed). For a
purely formal problem (empty informal text) the formal statement is the text. The first
occurrence in input order is kept, so the result does not depend on batching or resuming.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

from verimath.records import Problem

_WS = re.compile(r"\s+")
_PUNCT_SPACE = re.compile(r"\s*([^\w\s])\s*")


def normalize_text(text: str) -> str:
    """Canonical form for exact-duplicate detection.

    ``"  What is 2+2 ?"`` and ``"what is 2 + 2?"`` normalize to the same string.
    """
    t = unicodedata.normalize("NFKC", text).casefold()
    t = _WS.sub(" ", t).strip()
    return _PUNCT_SPACE.sub(r"\1", t)


def problem_text(problem: Problem) -> str:
    """The text that identifies a problem: informal statement, else the formal statement."""
    return problem.informal if problem.informal.strip() else (problem.formal_statement or "")


def text_hash(text: str) -> str:
    """sha256 (first 16 hex chars) of ``normalize_text(text)``."""
    return hashlib.sha256(normalize_text(text).encode("utf-8")).hexdigest()[:16]


def first_occurrences(keys_and_texts: Iterable[tuple[str, str]]) -> dict[str, str | None]:
    """Map each item key to None (first occurrence, kept) or the key of the item it duplicates.

    Args:
        keys_and_texts: ``(item_key, text)`` in input order.

    Returns:
        ``{item_key: None | key_of_first_item_with_the_same_normalized_text}``.
    """
    seen: dict[str, str] = {}
    out: dict[str, str | None] = {}
    for key, text in keys_and_texts:
        h = text_hash(text)
        first = seen.setdefault(h, key)
        out[key] = None if first == key else first
    return out
