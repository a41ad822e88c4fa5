"""Problem-level filter stages: dedup and decontamination.

Work items of these stages are ``{"key": content_hash(problem), "problem": problem.to_dict()}``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from verimath.datagen.decontam import NgramIndex, build_index
from verimath.datagen.dedup import first_occurrences, problem_text
from verimath.datagen.runner import Item, Outcome, fingerprint, reject
from verimath.records import Problem, content_hash

log = logging.getLogger(__name__)


def item_problem(item: Item) -> Problem:
    """The Problem of a work item."""
    return Problem.from_dict(item["problem"], where=str(item.get("key", "item")))


@dataclass
class DedupStage:
    """Keep the first of the problems whose normalized texts are equal (input order)."""

    name: str = "dedup"
    unit_in: str = "problems"
    unit_out: str = "problems"
    batch_size: int = 1024
    fingerprint: str = field(default_factory=lambda: fingerprint("dedup", "normalize-v1"))
    _dup_of: dict[str, str | None] = field(default_factory=dict)
    _ids: dict[str, str] = field(default_factory=dict)

    def prepare(self, items: list[Item], todo: list[Item]) -> None:
        """Decide first occurrences over all items (so resuming cannot change the decision)."""
        self._dup_of = first_occurrences(
            (it["key"], problem_text(item_problem(it))) for it in items
        )
        self._ids = {it["key"]: it["problem"]["id"] for it in items}

    def process(self, items: list[Item]) -> list[Outcome]:
        """Pass first occurrences; reject the rest naming the problem they duplicate."""
        outs = []
        for it in items:
            first = self._dup_of[it["key"]]
            if first is None:
                outs.append(Outcome(kept=[it]))
            else:
                reason = f"duplicate: same normalized text as {self._ids[first]}"
                outs.append(Outcome(rejected=[reject(it, reason, self.unit_in)]))
        return outs


@dataclass
class DecontamStage:
    """Drop problems sharing a word n-gram with the configured benchmark test sets.

    Args:
        benchmarks: specs for :func:`verimath.datasets.load_problems`; ``spec:split`` keeps one
            split (e.g. ``minif2f:test``).
        n: n-gram length in words.
        min_overlap: shared n-grams needed to flag a problem.
        index: a prebuilt index (tests); None builds it from ``benchmarks`` when needed.
    """

    benchmarks: tuple[str, ...] = ()
    n: int = 13
    min_overlap: int = 1
    index: NgramIndex | None = None
    name: str = "decontaminate"
    unit_in: str = "problems"
    unit_out: str = "problems"
    batch_size: int = 1024
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if not self.fingerprint:
            self.fingerprint = fingerprint("decontam", list(self.benchmarks), self.n,
                                           self.min_overlap)

    def prepare(self, items: list[Item], todo: list[Item]) -> None:
        """Build the n-gram index (only when there is work to do)."""
        if self.index is None:
            self.index = build_index_with_splits(self.benchmarks, self.n, self.min_overlap)

    def process(self, items: list[Item]) -> list[Outcome]:
        """Keep clean problems; reject contaminated ones naming the benchmark problem."""
        assert self.index is not None
        outs = []
        for it in items:
            hit = self.index.check_problem(item_problem(it))
            if hit is None:
                outs.append(Outcome(kept=[it]))
            else:
                outs.append(Outcome(rejected=[reject(it, "contaminated: " + hit.reason(self.n),
                                                     self.unit_in)]))
        return outs


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"minif2f:test"`` -> ``("minif2f", "test")``; a spec without ``:split`` -> (spec, None)."""
    from verimath.datasets import BENCHMARKS

    base, sep, split = spec.rpartition(":")
    if sep and base in BENCHMARKS and split.isidentifier():
        return base, split
    return spec, None


def build_index_with_splits(benchmarks: tuple[str, ...], n: int, min_overlap: int) -> NgramIndex:
    """:func:`verimath.datagen.decontam.build_index` that understands ``spec:split`` entries."""
    from verimath.datasets import load_problems

    plain = [b for b in benchmarks if split_spec(b)[1] is None]
    index = build_index(plain, n, min_overlap)
    for b in benchmarks:
        base, split = split_spec(b)
        if split is None:
            continue
        result = load_problems(base, split=split, allow_missing_gold=True)
        index.add_problems(result.problems, b)
    return index


def problems_of(items: list[Item]) -> list[Problem]:
    """The Problems of a list of work items."""
    return [item_problem(it) for it in items]


def as_items(problems: list[Problem]) -> list[Item]:
    """Work items for problems, in order; repeated identical records get distinct keys.

    The key is the content hash of the problem plus its occurrence number among identical
    records, so it is stable across runs while exact repeats still reach (and are counted by)
    the dedup stage.
    """
    seen: dict[str, int] = {}
    items = []
    for p in problems:
        d = p.to_dict()
        base = content_hash("problem", d)
        k = seen.get(base, 0)
        seen[base] = k + 1
        items.append({"key": base if k == 0 else content_hash(base, k), "problem": d})
    return items
