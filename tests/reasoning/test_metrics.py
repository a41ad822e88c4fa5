import itertools
import math
import random
from fractions import Fraction

import pytest

from verimath.reasoning.metrics import (
    bootstrap_mean_ci,
    group_answers,
    maj_at_k,
    pass_at_k,
    rate,
    score,
    wilson_interval,
)


def brute_pass_at_k(n: int, c: int, k: int) -> Fraction:
    """Fraction of k-subsets of n samples (c correct) containing at least one correct."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    hits = sum(any(samples[i] for i in s) for s in subsets)
    return Fraction(hits, len(subsets))


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_matches_brute_force_enumeration(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(float(brute_pass_at_k(n, c, k)), abs=1e-12)


@pytest.mark.parametrize(
    "n,c,k,expected",
    [(10, 0, 1, 0.0), (10, 10, 5, 1.0), (10, 3, 1, 0.3), (5, 1, 5, 1.0), (200, 1, 1, 0.005)],
)
def test_pass_at_k_known_values(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_is_stable_for_large_n():
    # the naive comb(n-c,k)/comb(n,k) overflows floats here; the product form does not
    v = pass_at_k(2000, 3, 1000)
    exact = 1 - Fraction(math.comb(1997, 1000), math.comb(2000, 1000))
    assert v == pytest.approx(float(exact), rel=1e-12)
    assert 0.0 <= pass_at_k(10_000, 1, 9_999) <= 1.0


@pytest.mark.parametrize("n,c,k", [(3, 1, 4), (3, 1, 0), (3, 4, 1), (3, -1, 1)])
def test_pass_at_k_rejects_bad_arguments(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


@pytest.mark.parametrize(
    "answers,correct,k,expected",
    [
        (["5", "5", "6"], [True, True, False], 3, 1.0),
        (["6", "5", "6"], [False, True, False], 3, 0.0),
        (["6", "5", "6"], [False, True, False], 1, 0.0),
        (["5", "6", "6", "6"], [True, False, False, False], 2, 1.0),  # tie: earliest wins
        (["6", "5"], [False, True], 2, 0.0),  # tie: earliest wins
        (["1,000", "1000", "7"], [True, True, False], 3, 1.0),  # normalised grouping
        (["$18.00$", "18", "17", "17.0"], [True, True, False, False], 4, 1.0),
        ([None, None, "7"], [False, False, False], 3, 0.0),
        ([None, None], [False, False], 2, 0.0),  # nothing to vote on: wrong
        (["5", "6", "6"], [True, None, None], 2, None),  # too few judged samples
        (["6", "5", "5", "6"], [None, True, True, False], 3, 1.0),  # None skipped
    ],
)
def test_maj_at_k(answers, correct, k, expected):
    assert maj_at_k(answers, correct, k) == expected


def _equiv(*classes):
    """A batched equivalence from explicit classes of equal answers (a grader stand-in)."""
    same = [frozenset(c) for c in classes]

    def eq(pairs):
        return [a == b or any({a, b} <= c for c in same) for a, b in pairs]

    return eq


def test_maj_at_k_groups_by_equivalence():
    eq = _equiv({"0.5", r"\frac{1}{2}"})

    answers = ["7", r"\frac{1}{2}", "0.5", "7", "0.5"]
    correct = [False, True, True, False, True]
    assert maj_at_k(answers, correct, 5) == 0.0  # by string: "7" (2, earliest) beats "0.5" (2)
    assert maj_at_k(answers, correct, 5, equivalent=eq) == 1.0  # 1/2 and 0.5 are one group of 3


def test_maj_at_k_rejects_bad_arguments():
    with pytest.raises(ValueError):
        maj_at_k(["1"], [True], 0)
    with pytest.raises(ValueError):
        maj_at_k(["1"], [True, False], 1)


def test_wilson_interval():
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(10, 10)
    assert hi == 1.0 and lo == pytest.approx(0.7225, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_wilson_covers_truth_about_95_percent():
    rng = random.Random(0)
    p, n, trials = 0.3, 50, 2000
    hits = 0
    for _ in range(trials):
        s = sum(rng.random() < p for _ in range(n))
        lo, hi = wilson_interval(s, n)
        hits += lo <= p <= hi
    assert 0.92 <= hits / trials <= 0.98


def test_bootstrap_mean_ci():
    vals = [0.0, 1.0] * 100
    lo, hi = bootstrap_mean_ci(vals, seed=1)
    assert lo < 0.5 < hi and hi - lo < 0.2
    assert bootstrap_mean_ci(vals, seed=1) == (lo, hi)  # seeded
    assert all(math.isnan(x) for x in bootstrap_mean_ci([]))


@pytest.mark.parametrize("answers,classes,groups", [
    (["5", "5", "6"], (), [[0, 1], [2]]),
    (["1,000", "1000", None, "7"], (), [[0, 1], [3]]),  # None casts no vote
    (["$18.00$", "18", " "], (), [[0, 1]]),  # empty after normalization: no vote
    (["7", r"\frac{1}{2}", "0.5", "7"], ({"0.5", r"\frac{1}{2}"},), [[0, 3], [1, 2]]),
    (["a", "b", "c"], ({"a", "c"}, {"c", "b"}), [[0, 1, 2]]),  # transitive
    ([None, None], (), []),
    ([], (), []),
])
def test_group_answers(answers, classes, groups):
    assert group_answers(answers, equivalent=_equiv(*classes) if classes else None) == groups


def test_group_answers_rejects_a_short_equivalence():
    with pytest.raises(ValueError, match="pairs"):
        group_answers(["1", "2"], equivalent=lambda pairs: [])


def test_score_excludes_unjudged_and_counts_reasons():
    correct = [
        [True, False, None, True],  # 3 judged
        [False, False, False, False],
        [None, None, None, None],  # nothing judged
        [True, True, True, True],
    ]
    answers = [["1", "2", None, "1"], ["3", "4", "3", "5"], [None] * 4, ["9"] * 4]
    reasons = [[None, None, "timeout", None], [None] * 4, ["bad_gold"] * 4, [None] * 4]
    s = score(correct, [1, 2, 4], answers=answers, reasons=reasons, n_boot=200)
    assert (s.n_problems, s.n_samples, s.n_judged) == (4, 16, 11)
    assert s.unjudged == {"bad_gold": 4, "timeout": 1}
    assert (s.n_bad_gold, s.n_infra_failures) == (4, 1)
    assert not s.nothing_judged
    assert s.accuracy.problems == 3
    assert s.accuracy.mean == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert s.pass_at_k["1"].mean == pytest.approx(s.accuracy.mean)  # accuracy is pass@1
    assert s.pass_at_k["4"].problems == 2  # the 3-judged problem cannot give pass@4
    assert s.pass_at_k["4"].mean == pytest.approx(0.5)
    assert s.maj_at_k["2"].problems == 3
    # maj@2: problem 0 votes "1"(T) vs "2"(F) tie -> "1" -> 1; problem 1 -> 0; problem 3 -> 1
    assert s.maj_at_k["2"].mean == pytest.approx(2 / 3)
    d = s.to_dict()
    assert d["n_bad_gold"] == 4 and d["n_infra_failures"] == 1 and d["problems_per_k"]["4"] == 2
    lo, hi = d["accuracy_ci95"]
    assert lo < d["accuracy"] < hi


@pytest.mark.parametrize("correct,mean,lo_max,hi_min", [
    # all wrong: the interval must not collapse to [0, 0] (the old normal approximation did)
    ([[False] * 4] * 10, 0.0, 0.0, 0.2),
    ([[False]] * 10, 0.0, 0.0, 0.2),
    # all right: not [1, 1] either
    ([[True] * 4] * 10, 1.0, 0.8, 1.0),
    ([[True]] * 10, 1.0, 0.8, 1.0),
    # mixed
    ([[True, False]] * 10, 0.5, 0.4, 0.6),
])
def test_score_intervals_at_the_edges(correct, mean, lo_max, hi_min):
    s = score(correct, [1], n_boot=200)
    lo, hi = s.accuracy.ci95
    assert s.accuracy.mean == pytest.approx(mean)
    assert lo <= mean <= hi and hi - lo > 0.1
    assert lo <= lo_max and hi >= hi_min
    assert s.pass_at_k["1"].ci95 == s.accuracy.ci95


def test_score_one_sample_each_is_plain_wilson():
    correct = [[True]] * 7 + [[False]] * 13
    assert score(correct, [1], n_boot=0).accuracy.ci95 == wilson_interval(7, 20)


def test_score_nothing_judged():
    s = score([[None, None], [None]], [1], reasons=[["bad_gold", "bad_gold"], [None]])
    assert s.nothing_judged and s.n_judged == 0
    assert (s.n_bad_gold, s.n_infra_failures) == (2, 1)
    assert math.isnan(s.accuracy.mean) and all(math.isnan(x) for x in s.accuracy.ci95)
    assert s.to_dict()["nothing_judged"] is True
    empty = score([], [1])
    assert empty.n_problems == 0 and math.isnan(empty.pass_at_k["1"].mean)


def test_score_rejects_bad_arguments():
    with pytest.raises(ValueError):
        score([[True]], [0])
    with pytest.raises(ValueError):
        score([[True]], [1], answers=[["1", "2"]])
    with pytest.raises(ValueError):
        score([[True]], [1], reasons=[[None, None]])


def test_score_pass_at_1_equals_mean_accuracy_when_balanced():
    rng = random.Random(3)
    correct = [[rng.random() < 0.4 for _ in range(8)] for _ in range(50)]
    s = score(correct, [1, 8], n_boot=100)
    assert s.pass_at_k["1"].mean == pytest.approx(s.accuracy.mean)
    assert s.pass_at_k["8"].mean >= s.pass_at_k["1"].mean
    lo, hi = s.pass_at_k["1"].ci95_bootstrap
    assert lo < s.accuracy.mean < hi


def test_rate_fractional_wilson_is_wider_than_pooled_samples():
    """Over problems, 8 samples each: the interval reflects 50 problems, not 400 samples."""
    per_problem = [0.25, 0.75] * 25
    r = rate(per_problem)
    pooled = wilson_interval(200, 400)
    assert r.mean == pytest.approx(0.5) and r.problems == 50
    assert (r.ci95[1] - r.ci95[0]) > (pooled[1] - pooled[0])
