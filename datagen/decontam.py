"""Decontamination: drop problems that share a word n-gram with a benchmark test set.

Follows the n-gram overlap test of Brown et al. 2020 (GPT-3, appendix C; 13-grams) as used by
later math-data pipelines: texts are lower-cased, every non-alphanumeric character becomes a
space, and the result is split into words. A candidate is contaminated when at least
``min_overlap`` of its word n-grams occur in any benchmark problem (informal statement and, for
formal sets, the formal statement). A text shorter than ``n`` words is compared whole: it is
contaminated when it equals a benchmark text of the same (short) length, or when it occurs as a
contiguous word sequence inside a benchmark text that is itself shorter than ``n`` words.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from verimath.records import Problem

log = logging.getLogger(__name__)

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def words(text: str) -> list[str]:
    """Lower-cased alphanumeric words of ``text`` (punctuation and LaTeX markup dropped)."""
    return _NON_ALNUM.sub(" ", text.lower()).split()


def _gram_id(ws: list[str] | tuple[str, ...]) -> bytes:
    return hashlib.blake2b(" ".join(ws).encode("utf-8"), digest_size=12).digest()


def ngrams(ws: list[str], n: int) -> Iterable[bytes]:
    """Hashed word n-grams of ``ws`` (12-byte blake2b digests); none when ``len(ws) < n``."""
    for i in range(len(ws) - n + 1):
        yield _gram_id(ws[i:i + n])


@dataclass
class Contamination:
    """Why a text was flagged.

    Attributes:
        benchmark: the benchmark spec (``gsm8k``, ``math500``, a path...).
        problem_id: the id of the overlapping benchmark problem.
        overlaps: how many of the candidate's n-grams occur in that benchmark set.
    """

    benchmark: str
    problem_id: str
    overlaps: int

    def reason(self, n: int) -> str:
        """Human-readable rejection reason."""
        return f"{n}-gram overlap with {self.benchmark} ({self.problem_id}, {self.overlaps} shared)"


@dataclass
class NgramIndex:
    """Word n-grams of benchmark test sets, for overlap lookups.

    Attributes:
        n: n-gram length in words (13 by default).
        min_overlap: shared n-grams needed to flag a candidate (1: any overlap).
    """

    n: int = 13
    min_overlap: int = 1
    _grams: dict[bytes, tuple[str, str]] = field(default_factory=dict)
    _short: dict[bytes, tuple[str, str]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n-gram length must be >= 1 (got {self.n}); 13 is the usual value")
        if self.min_overlap < 1:
            raise ValueError(f"min_overlap must be >= 1 (got {self.min_overlap})")

    def add_text(self, text: str, benchmark: str, problem_id: str) -> None:
        """Index one benchmark text."""
        ws = words(text)
        if not ws:
            return
        if len(ws) < self.n:
            # every contiguous sub-sequence, so a short candidate inside a short text matches
            for i in range(len(ws)):
                for j in range(i + 1, len(ws) + 1):
                    self._short.setdefault(_gram_id(ws[i:j]), (benchmark, problem_id))
            return
        for g in ngrams(ws, self.n):
            self._grams.setdefault(g, (benchmark, problem_id))
        self._short.setdefault(_gram_id(ws), (benchmark, problem_id))

    def add_problems(self, problems: Iterable[Problem], benchmark: str) -> None:
        """Index the informal and formal statements of ``problems`` under ``benchmark``."""
        count = 0
        for p in problems:
            count += 1
            self.add_text(p.informal, benchmark, p.id)
            if p.formal_statement:
                self.add_text(p.formal_statement, benchmark, p.id)
        self.sizes[benchmark] = self.sizes.get(benchmark, 0) + count

    def check(self, text: str) -> Contamination | None:
        """The first benchmark problem ``text`` overlaps with, or None when it is clean."""
        ws = words(text)
        if not ws:
            return None
        if len(ws) < self.n:
            hit = self._short.get(_gram_id(ws))
            return Contamination(hit[0], hit[1], 1) if hit else None
        hits: dict[tuple[str, str], int] = {}
        total = 0
        for g in set(ngrams(ws, self.n)):
            src = self._grams.get(g)
            if src is not None:
                hits[src] = hits.get(src, 0) + 1
                total += 1
        if total < self.min_overlap:
            return None
        (bench, pid), _ = max(hits.items(), key=lambda kv: kv[1])
        return Contamination(bench, pid, total)

    def check_problem(self, problem: Problem) -> Contamination | None:
        """:meth:`check` on the informal statement, then on the formal statement."""
        for text in (problem.informal, problem.formal_statement or ""):
            hit = self.check(text)
            if hit is not None:
                return hit
        return None


def build_index(benchmarks: Iterable[str], n: int = 13, min_overlap: int = 1) -> NgramIndex:
    """Index the test sets named by ``benchmarks`` (``verimath.datasets.load_problems`` specs).

    Raises:
        FileNotFoundError: a benchmark cannot be found (locally or on the hub); decontaminating
            against fewer sets than configured would silently leak test data.
    """
    from verimath.datasets import load_problems

    index = NgramIndex(n=n, min_overlap=min_overlap)
    for spec in benchmarks:
        result = load_problems(spec, allow_missing_gold=True)  # only the text is indexed
        if result.errors:
            log.warning("%s: %d unreadable benchmark records ignored", spec, len(result.errors))
        index.add_problems(result.problems, spec)
        log.info("decontamination index: %s (%d problems)", spec, len(result.problems))
    return index
