"""The one metrics module: unbiased pass@k, maj@k, answer grouping, Wilson and bootstrap intervals.

Every job that reports a rate uses :func:`score` (eval, prove), :func:`rate` (grade: one
verdict per line) or :func:`group_answers` (maj@k here, self-consistency in datagen), so a
number means the same thing wherever verimath prints it.

Conventions: a sample's correctness is ``True`` / ``False`` when the verifier judged it and
``None`` when it could not be judged: bad gold (a data problem) or an infrastructure failure
(grader timeout, sandbox crash, dead server). ``None`` samples are excluded and counted
separately, by reason, never scored as wrong. A mean over nothing is NaN, and
:attr:`Scores.nothing_judged` says so; printers must show "not judged", not a number.

Intervals: ``ci95`` is the Wilson score interval (Wilson 1927) over problems, with the sum of
per-problem values (each in [0, 1]) as the success count. It is exact-coverage Wilson when
every problem has one sample and conservative otherwise (a [0, 1] variable of mean p has
variance at most p(1-p)); unlike the normal approximation it never collapses to [0, 0] when
every problem is wrong or to [1, 1] when every problem is right. ``ci95_bootstrap`` is the
percentile bootstrap over problems (Efron 1979), which does degenerate at 0 and 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from verimath.reasoning.extract import normalize_answer

__all__ = [
    "Rate",
    "Scores",
    "bootstrap_mean_ci",
    "check_ks",
    "group_answers",
    "maj_at_k",
    "pass_at_k",
    "rate",
    "score",
    "wilson_interval",
]

#: batched equivalence of answer pairs, e.g. ``lambda pairs: [v.correct for v in
#: grader.grade_many(pairs, extract=False)]``
Equivalence = Callable[[Sequence[tuple[str, str]]], Sequence[bool]]


def check_ks(ks: int | Sequence[int], n: int) -> tuple[int, ...]:
    """The k values of pass@k / maj@k as a tuple, each checked to lie in ``1..n``.

    Args:
        ks: one k or several (a YAML scalar or list).
        n: samples (or attempts) per problem.

    Raises:
        ValueError: ``n < 1`` or some k outside ``1..n``; the message says how to fix it.
    """
    if n < 1:
        raise ValueError("n (samples per problem) must be >= 1")
    kt = (ks,) if isinstance(ks, int) else tuple(ks)
    bad = [k for k in kt if not 1 <= k <= n]
    if bad:
        raise ValueError(f"k={bad}: every k must be in 1..n (n={n}); raise n or drop k")
    return kt


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k estimator (Chen et al. 2021, "Evaluating LLMs Trained on Code", eq. 1).

    ``1 - C(n-c, k) / C(n, k)``, computed in the numerically stable product form
    ``1 - prod_{i=n-c+1}^{n} (1 - k/i)`` (no huge binomials, exact for small n).

    Args:
        n: samples drawn for the problem (judged samples only).
        c: how many of them are correct, ``0 <= c <= n``.
        k: the k of pass@k, ``1 <= k <= n``.

    Returns:
        The probability that at least one of k samples drawn without replacement from the n is
        correct, in [0, 1].

    Raises:
        ValueError: when ``k < 1``, ``k > n`` or ``c`` is outside ``[0, n]``.
    """
    if k < 1 or k > n:
        raise ValueError(f"pass@k needs 1 <= k <= n, got n={n}, k={k}")
    if c < 0 or c > n:
        raise ValueError(f"pass@k needs 0 <= c <= n, got n={n}, c={c}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def group_answers(
    answers: Sequence[str | None], *, equivalent: Equivalence | None = None
) -> list[list[int]]:
    r"""Group samples by their answer: the one grouping of maj@k and of self-consistency.

    1. A sample whose answer is None or normalizes to nothing casts no vote (in no group).
    2. The others are grouped by :func:`verimath.reasoning.extract.normalize_answer` key
       (``1,000`` = ``1000``, ``$18.00$`` = ``18``).
    3. With ``equivalent``, groups whose representatives (first members) are equivalent are
       merged, transitively (union-find), e.g. ``0.5`` and ``rac{1}{2}`` by the grader.
       All representative pairs are asked in one batch.

    Args:
        answers: extracted answer per sample.
        equivalent: optional batched equivalence of answer pairs.

    Returns:
        Groups of sample indices, each sorted, ordered by their first member.
    """
    exact: dict[str, list[int]] = {}
    for i, a in enumerate(answers):
        key = normalize_answer(a) if a is not None else None
        if key is not None:
            exact.setdefault(key, []).append(i)
    groups = list(exact.values())
    if equivalent is None or len(groups) < 2:
        return groups
    reps = [answers[g[0]] for g in groups]
    idx = [(i, j) for i in range(len(reps)) for j in range(i + 1, len(reps))]
    same = list(equivalent([(reps[i], reps[j]) for i, j in idx]))  # type: ignore[misc]
    if len(same) != len(idx):
        raise ValueError(f"equivalent returned {len(same)} results for {len(idx)} pairs")
    parent = list(range(len(groups)))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for (i, j), ok in zip(idx, same, strict=True):
        if ok:
            ri, rj = find(i), find(j)
            parent[max(ri, rj)] = min(ri, rj)
    merged: dict[int, list[int]] = {}
    for gi, g in enumerate(groups):
        merged.setdefault(find(gi), []).extend(g)
    return sorted((sorted(g) for g in merged.values()), key=lambda g: g[0])


def maj_at_k(
    answers: Sequence[str | None],
    correct: Sequence[bool | None],
    k: int,
    *,
    equivalent: Equivalence | None = None,
) -> float | None:
    """maj@k: whether the most frequent answer among the first k judged samples is correct.

    Samples whose ``correct`` is None (not judged) are skipped, so "the first k" means the
    first k judged samples. Answers are grouped by :func:`group_answers`; samples without an
    answer take part in the count of k but cast no vote. The largest group wins; ties go to
    the group whose first member appears earliest (deterministic: the answer the model gave
    first). The winning group is correct when its first member is.

    Args:
        answers: extracted answer per sample (None: nothing extracted).
        correct: verdict per sample (True/False judged, None not judged).
        k: samples to vote over, ``k >= 1``.
        equivalent: optional batched answer equivalence (see :func:`group_answers`).

    Returns:
        1.0 or 0.0; 0.0 when none of the k samples has an answer; None when fewer than k
        samples were judged (the problem cannot be scored at this k).

    Raises:
        ValueError: on ``k < 1`` or lists of different lengths.
    """
    if k < 1:
        raise ValueError(f"maj@k needs k >= 1, got {k}")
    if len(answers) != len(correct):
        raise ValueError(f"answers ({len(answers)}) and correct ({len(correct)}) differ in length")
    judged = [(a, c) for a, c in zip(answers, correct, strict=True) if c is not None][:k]
    if len(judged) < k:
        return None
    groups = group_answers([a for a, _ in judged], equivalent=equivalent)
    if not groups:
        return 0.0
    best = max(groups, key=lambda g: (len(g), -g[0]))
    return 1.0 if judged[best[0]][1] else 0.0


def wilson_interval(successes: float, total: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927).

    Args:
        successes: number of successes, ``0 <= successes <= total``; may be fractional (a sum
            of per-problem rates in [0, 1], see the module docstring).
        total: number of trials.
        z: normal quantile; 1.96 for a 95% interval.

    Returns:
        ``(low, high)`` within [0, 1]; ``(0.0, 1.0)`` when ``total == 0``.

    Raises:
        ValueError: when ``successes`` is outside ``[0, total]``.
    """
    if total < 0 or successes < 0 or successes > total + 1e-9:
        raise ValueError(f"need 0 <= successes <= total, got {successes}/{total}")
    if total == 0:
        return (0.0, 1.0)
    p = min(1.0, successes / total)
    z2 = z * z
    denom = 1.0 + z2 / total
    centre = (p + z2 / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def bootstrap_mean_ci(
    values: Sequence[float], *, n_boot: int = 2000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-problem ``values`` (Efron 1979).

    Problems are resampled with replacement ``n_boot`` times (numpy ``default_rng(seed)``,
    reproducible; resamples drawn in blocks so memory stays bounded). Returns ``(nan, nan)``
    for no values.
    """
    import numpy as np

    m = len(values)
    if m == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    vals = np.asarray(values, dtype=np.float64)
    block = max(1, 2_000_000 // m)
    means = np.concatenate([vals[rng.integers(0, m, size=(min(block, n_boot - i), m))].mean(1)
                            for i in range(0, n_boot, block)])
    means.sort()
    lo = float(means[int(math.floor(alpha / 2 * (n_boot - 1)))])
    hi = float(means[int(math.ceil((1 - alpha / 2) * (n_boot - 1)))])
    return (lo, hi)


@dataclass(frozen=True, slots=True)
class Rate:
    """A rate over problems with its intervals.

    Attributes:
        mean: mean of per-problem values in [0, 1]; NaN when ``problems == 0``.
        ci95: Wilson 95% interval over problems (module docstring); (NaN, NaN) when empty.
        ci95_bootstrap: percentile-bootstrap 95% interval over problems; (NaN, NaN) when
            empty or not computed.
        problems: how many problems entered the mean.
    """

    mean: float
    ci95: tuple[float, float]
    ci95_bootstrap: tuple[float, float]
    problems: int


def rate(values: Sequence[float], *, n_boot: int = 0, seed: int = 0) -> Rate:
    """:class:`Rate` of per-problem values in [0, 1] (one judged verdict each: 0.0 or 1.0).

    Args:
        values: one value per problem.
        n_boot: bootstrap resamples (0: no bootstrap interval).
        seed: bootstrap seed.
    """
    m = len(values)
    if m == 0:
        return Rate(math.nan, (math.nan, math.nan), (math.nan, math.nan), 0)
    total = float(sum(values))
    boot = bootstrap_mean_ci(values, n_boot=n_boot, seed=seed) if n_boot else (math.nan,) * 2
    return Rate(total / m, wilson_interval(total, m), boot, m)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Scores:
    """What :func:`score` returns; :meth:`to_dict` is the ``summary.json`` shape.

    Attributes:
        n_problems / n_samples / n_judged: counts (judged: True or False samples).
        unjudged: samples not judged, by reason (``bad_gold``, ``timeout``, ``error``,
            ``generation_error``, ...).
        accuracy: per-problem accuracy over judged samples, averaged over problems that have
            one (= pass@1).
        pass_at_k / maj_at_k: per k (as a string); a problem with fewer than k judged
            samples is left out of that k (``Rate.problems`` says how many entered).
    """

    n_problems: int
    n_samples: int
    n_judged: int
    unjudged: dict[str, int]
    accuracy: Rate
    pass_at_k: dict[str, Rate]
    maj_at_k: dict[str, Rate] = field(default_factory=dict)

    @property
    def n_bad_gold(self) -> int:
        """Samples not judged because the gold answer was missing or unparsable (data)."""
        return self.unjudged.get("bad_gold", 0)

    @property
    def n_infra_failures(self) -> int:
        """Samples not judged for any other reason (grader, sandbox, backend failures)."""
        return sum(self.unjudged.values()) - self.n_bad_gold

    @property
    def nothing_judged(self) -> bool:
        """True when no sample was judged: every rate is NaN and means nothing."""
        return self.n_judged == 0

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-ready dict, NaN where undefined.

        Keys: ``n_problems``, ``n_samples``, ``n_judged``, ``n_bad_gold``,
        ``n_infra_failures``, ``unjudged`` ({reason: n}), ``nothing_judged``,
        ``n_problems_judged``, ``accuracy``, ``accuracy_ci95``, ``accuracy_ci95_bootstrap``,
        ``pass@k`` ({k: mean}), ``pass@k_ci95`` / ``pass@k_ci95_bootstrap`` ({k: [lo, hi]}),
        ``problems_per_k`` ({k: n}), ``maj@k``, ``maj@k_ci95``.
        """
        return {
            "n_problems": self.n_problems, "n_samples": self.n_samples,
            "n_judged": self.n_judged, "n_bad_gold": self.n_bad_gold,
            "n_infra_failures": self.n_infra_failures, "unjudged": dict(self.unjudged),
            "nothing_judged": self.nothing_judged, "n_problems_judged": self.accuracy.problems,
            "accuracy": self.accuracy.mean, "accuracy_ci95": list(self.accuracy.ci95),
            "accuracy_ci95_bootstrap": list(self.accuracy.ci95_bootstrap),
            "pass@k": {k: r.mean for k, r in self.pass_at_k.items()},
            "pass@k_ci95": {k: list(r.ci95) for k, r in self.pass_at_k.items()},
            "pass@k_ci95_bootstrap": {k: list(r.ci95_bootstrap) for k, r in self.pass_at_k.items()},
            "problems_per_k": {k: r.problems for k, r in self.pass_at_k.items()},
            "maj@k": {k: r.mean for k, r in self.maj_at_k.items()},
            "maj@k_ci95": {k: list(r.ci95) for k, r in self.maj_at_k.items()},
        }


def score(
    correct: Sequence[Sequence[bool | None]],
    ks: Sequence[int],
    *,
    answers: Sequence[Sequence[str | None]] | None = None,
    reasons: Sequence[Sequence[str | None]] | None = None,
    equivalent: Equivalence | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> Scores:
    """The one scorer: accuracy, unbiased pass@k and (with ``answers``) maj@k over problems.

    Args:
        correct: ``[problem][sample]`` correctness; None = not judged (excluded, counted).
        ks: the k values of pass@k / maj@k, each >= 1.
        answers: ``[problem][sample]`` extracted answers, same shape; enables maj@k.
        reasons: ``[problem][sample]`` why a None sample was not judged (a verdict status
            such as ``"bad_gold"`` or ``"timeout"``); None or a None entry counts as
            ``"infrastructure"``.
        equivalent: batched answer equivalence for maj@k grouping (:func:`group_answers`).
        n_boot: bootstrap resamples for the ``ci95_bootstrap`` intervals (0: none).
        seed: bootstrap seed.

    Returns:
        Scores. Accuracy is the mean over problems of per-problem judged accuracy (equal to
        pass@1); its ``ci95`` is Wilson over problems.

    Raises:
        ValueError: a k < 1, or ``answers`` / ``reasons`` of a different shape.
    """
    if any(k < 1 for k in ks):
        raise ValueError(f"every k must be >= 1, got {list(ks)}")
    shape = [len(c) for c in correct]
    for name, other in (("answers", answers), ("reasons", reasons)):
        if other is not None and [len(x) for x in other] != shape:
            raise ValueError(f"{name} must have the same [problem][sample] shape as correct")
    unjudged: dict[str, int] = {}
    for pi, cs in enumerate(correct):
        for si, c in enumerate(cs):
            if c is None:
                why = (reasons[pi][si] if reasons is not None else None) or "infrastructure"
                unjudged[why] = unjudged.get(why, 0) + 1
    judged = [[bool(c) for c in cs if c is not None] for cs in correct]
    opts = {"n_boot": n_boot, "seed": seed}
    acc = rate([sum(j) / len(j) for j in judged if j], **opts)
    pass_k = {str(k): rate([pass_at_k(len(j), sum(j), k) for j in judged if len(j) >= k],
                           **opts) for k in ks}
    maj_k: dict[str, Rate] = {}
    if answers is not None:
        for k in ks:
            majs = [m for ans, cs in zip(answers, correct, strict=True)
                    if (m := maj_at_k(ans, cs, k, equivalent=equivalent)) is not None]
            maj_k[str(k)] = rate(majs, **opts)
    return Scores(
        n_problems=len(correct), n_samples=sum(shape), n_judged=sum(len(j) for j in judged),
        unjudged=dict(sorted(unjudged.items())), accuracy=acc, pass_at_k=pass_k, maj_at_k=maj_k,
    )
