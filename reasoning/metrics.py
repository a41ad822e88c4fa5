"""Evaluation metrics: unbiased pass@k, maj@k, Wilson intervals, bootstrap, and a summary.

Conventions: a sample's correctness is ``True`` / ``False`` when the verifier judged it and
``None`` when infrastructure failed (grader timeout, bad gold, sandbox crash...). ``None``
samples are excluded and counted separately, never scored as wrong.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

from reasoning.extract import normalize_answer

__all__ = [
    "bootstrap_mean_ci",
    "maj_at_k",
    "pass_at_k",
    "summarize",
    "wilson_interval",
]


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


def maj_at_k(
    answers: Sequence[str | None],
    correct: Sequence[bool | None],
    k: int,
    *,
    same: Callable[[str, str], bool] | None = None,
) -> float | None:
    """maj@k: whether the most frequent answer among the first k judged samples is correct.

    Samples whose ``correct`` is None (infrastructure failures) are skipped, so "the first k"
    means the first k judged samples. Samples with no answer (``answers[i]`` None) take part
    in the count of k but cast no vote. Answers are grouped by :func:`normalize_answer` key
    and, when ``same`` is given (e.g. ``lambda a, b: grader.grade(a, b, extract=False).correct``),
    groups whose representatives are ``same`` are merged (first-seen order, transitive through
    the representative).

    Ties: the tied group whose first member appears earliest wins (deterministic; the answer
    a model produced first). The winning group's correctness is its first member's.

    Args:
        answers: extracted answer per sample (None: nothing extracted).
        correct: verdict per sample (True/False judged, None infrastructure failure).
        k: samples to vote over, ``k >= 1``.
        same: optional equivalence of two answer strings.

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
    groups: list[tuple[str, str, int, bool]] = []  # (key, representative, votes, correct)
    for ans, ok in judged:
        key = normalize_answer(ans)
        if key is None or ans is None:
            continue
        for i, (gkey, rep, votes, gok) in enumerate(groups):
            if gkey == key or (same is not None and same(rep, ans)):
                groups[i] = (gkey, rep, votes + 1, gok)
                break
        else:
            groups.append((key, ans, 1, bool(ok)))
    if not groups:
        return 0.0
    best = max(range(len(groups)), key=lambda i: (groups[i][2], -i))
    return 1.0 if groups[best][3] else 0.0


def wilson_interval(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927).

    Args:
        successes: number of successes, ``0 <= successes <= total``.
        total: number of trials.
        z: normal quantile; 1.96 for a 95% interval.

    Returns:
        ``(low, high)`` within [0, 1]; ``(0.0, 1.0)`` when ``total == 0``.

    Raises:
        ValueError: when ``successes`` is outside ``[0, total]``.
    """
    if total < 0 or successes < 0 or successes > total:
        raise ValueError(f"need 0 <= successes <= total, got {successes}/{total}")
    if total == 0:
        return (0.0, 1.0)
    p = successes / total
    z2 = z * z
    denom = 1.0 + z2 / total
    centre = (p + z2 / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def bootstrap_mean_ci(
    values: Sequence[float], *, n_boot: int = 2000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-problem ``values``.

    Problems are resampled with replacement ``n_boot`` times (seeded, reproducible). Returns
    ``(nan, nan)`` for no values.
    """
    m = len(values)
    if m == 0:
        return (math.nan, math.nan)
    rng = random.Random(seed)
    vals = list(values)
    means = sorted(sum(rng.choices(vals, k=m)) / m for _ in range(n_boot))
    lo = means[int(math.floor(alpha / 2 * (n_boot - 1)))]
    hi = means[int(math.ceil((1 - alpha / 2) * (n_boot - 1)))]
    return (lo, hi)


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def summarize(
    per_problem: Sequence[Sequence[bool | None]],
    ks: Sequence[int],
    *,
    answers: Sequence[Sequence[str | None]] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Aggregate per-sample correctness into accuracy, pass@k and (optionally) maj@k.

    Args:
        per_problem: ``[problem][sample]`` correctness; None = infrastructure failure,
            excluded and counted in ``samples_failed``.
        ks: the k values for pass@k / maj@k.
        answers: ``[problem][sample]`` extracted answers, same shape; enables maj@k.
        n_boot: bootstrap resamples for the pass@k / maj@k intervals.
        seed: bootstrap seed.

    Returns:
        A JSON-ready dict::

            {"problems", "samples", "samples_judged", "samples_failed",
             "problems_unjudged",                   # problems with no judged sample
             "accuracy": {"correct", "total", "mean", "ci95"},   # pooled judged samples, Wilson
             "pass@k": {"1": {"mean", "ci95", "problems"}, ...}, # bootstrap over problems
             "maj@k":  {...}}                                    # only with ``answers``

        At each k, a problem with fewer than k judged samples is left out of that k's mean;
        ``problems`` says how many were used. Means of nothing are NaN.

    Raises:
        ValueError: on ``k < 1`` or ``answers`` of a different shape.
    """
    if any(k < 1 for k in ks):
        raise ValueError(f"every k must be >= 1, got {list(ks)}")
    if answers is not None and [len(a) for a in answers] != [len(c) for c in per_problem]:
        raise ValueError("answers must have the same [problem][sample] shape as per_problem")
    judged = [[bool(c) for c in cs if c is not None] for cs in per_problem]
    n_samples = sum(len(cs) for cs in per_problem)
    n_judged = sum(len(j) for j in judged)
    n_correct = sum(sum(j) for j in judged)
    out: dict[str, Any] = {
        "problems": len(per_problem),
        "samples": n_samples,
        "samples_judged": n_judged,
        "samples_failed": n_samples - n_judged,
        "problems_unjudged": sum(1 for j in judged if not j),
        "accuracy": {
            "correct": n_correct,
            "total": n_judged,
            "mean": n_correct / n_judged if n_judged else math.nan,
            "ci95": list(wilson_interval(n_correct, n_judged)),
        },
        "pass@k": {},
    }
    for k in ks:
        vals = [pass_at_k(len(j), sum(j), k) for j in judged if len(j) >= k]
        out["pass@k"][str(k)] = {
            "mean": _mean(vals),
            "ci95": list(bootstrap_mean_ci(vals, n_boot=n_boot, seed=seed)),
            "problems": len(vals),
        }
    if answers is not None:
        out["maj@k"] = {}
        for k in ks:
            majs = [
                m
                for ans, cs in zip(answers, per_problem, strict=True)
                if (m := maj_at_k(ans, cs, k)) is not None
            ]
            out["maj@k"][str(k)] = {
                "mean": _mean(majs),
                "ci95": list(bootstrap_mean_ci(majs, n_boot=n_boot, seed=seed)),
                "problems": len(majs),
            }
    return out
