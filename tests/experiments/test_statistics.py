"""Summaries, comparisons and preference tests against scipy (hand-built where scipy has none)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from handler.experiments.statistics import (
    MetricCounts,
    compare,
    metric_kind,
    preference,
    summarize,
    two_proportions,
    welch,
    wilson_interval,
)

pytestmark = pytest.mark.unit

TOL = 1e-6

# Known data: two small samples with unequal variances and sizes.
A = [12.1, 14.3, 11.8, 15.2, 13.9, 12.7, 16.1, 14.8]
B = [10.2, 11.9, 10.8, 12.5, 9.7, 11.1, 10.4, 13.3, 12.0, 10.9, 11.6]


def _wilson_ref(successes: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's interval from scipy's normal quantile (and binomtest's, for whole successes)."""
    if float(successes).is_integer():
        ci = stats.binomtest(int(successes), n).proportion_ci(confidence, method="wilson")
        return float(ci.low), float(ci.high)
    z = stats.norm.ppf(0.5 + confidence / 2)
    p = successes / n
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return center - half, center + half


def _two_proportion_ref(x1: int, n1: int, x2: int, n2: int, confidence: float = 0.95) -> dict[str, float]:
    """Pooled z-test from scipy.stats.norm, Newcombe's hybrid score interval from Wilson's."""
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    l1, u1 = _wilson_ref(x1, n1, confidence)
    l2, u2 = _wilson_ref(x2, n2, confidence)
    diff = p1 - p2
    return {
        "z": z,
        "p": 2 * stats.norm.sf(abs(z)),
        "low": diff - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
        "high": diff + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2),
    }


def _assert_welch(a: list[float], b: list[float], confidence: float = 0.95) -> None:
    ref = stats.ttest_ind(a, b, equal_var=False)
    ci = ref.confidence_interval(confidence)
    got = welch(MetricCounts.of(a), MetricCounts.of(b), confidence)
    assert got.test == "welch_t"
    assert got.diff == pytest.approx(np.mean(a) - np.mean(b), abs=1e-9)
    assert got.statistic == pytest.approx(ref.statistic, rel=1e-7)
    assert got.df == pytest.approx(ref.df, rel=1e-7)
    assert got.p_value == pytest.approx(ref.pvalue, abs=TOL)
    assert got.ci is not None
    assert got.ci.low == pytest.approx(ci.low, abs=TOL)
    assert got.ci.high == pytest.approx(ci.high, abs=TOL)


def _assert_t_interval(values: list[float], confidence: float = 0.95) -> None:
    s = summarize(MetricCounts.of(values), "continuous", confidence)
    n = len(values)
    low, high = stats.t.interval(confidence, n - 1, loc=np.mean(values), scale=stats.sem(values))
    assert s.mean == pytest.approx(np.mean(values), abs=1e-9)
    assert s.variance == pytest.approx(np.var(values, ddof=1), rel=1e-7)
    assert s.ci is not None
    assert s.ci.low == pytest.approx(low, abs=TOL)
    assert s.ci.high == pytest.approx(high, abs=TOL)


def test_welch_on_known_data() -> None:
    _assert_welch(A, B)
    _assert_welch(B, A, 0.99)
    got = welch(MetricCounts.of(A), MetricCounts.of(B))
    assert got.significant  # the means differ by ~3 with sd ~1.3
    assert got.ci is not None and got.ci.low > 0


def test_welch_on_random_data() -> None:
    rng = np.random.default_rng(20240601)
    for _ in range(200):
        n1, n2 = (int(x) for x in rng.choice([2, 3, 5, 12, 40, 300, 5000], size=2))
        shift = rng.normal(0, 0.5)
        a = rng.normal(10 + shift, rng.uniform(0.1, 5), n1).tolist()
        b = rng.exponential(rng.uniform(1, 20), n2).tolist()
        _assert_welch(a, b, float(rng.choice([0.8, 0.9, 0.95, 0.99])))


def test_t_interval_of_the_mean() -> None:
    _assert_t_interval(A)
    _assert_t_interval([3.0, 5.0])
    rng = np.random.default_rng(5)
    for n in (2, 3, 7, 30, 1000, 200_000):
        _assert_t_interval(rng.normal(250.0, 40.0, n).tolist())


def test_summary_without_enough_values_has_no_interval() -> None:
    empty = summarize(MetricCounts(), "continuous")
    assert (empty.n, empty.mean, empty.variance, empty.ci) == (0, None, None, None)
    one = summarize(MetricCounts.of([4.2]), "continuous")
    assert (one.n, one.mean, one.variance, one.ci) == (1, 4.2, None, None)
    one_binary = summarize(MetricCounts.of([1.0]), "binary")
    assert one_binary.mean == 1.0 and one_binary.ci is None
    assert welch(MetricCounts.of([1.0]), MetricCounts.of(A)).p_value is None
    assert two_proportions(MetricCounts(), MetricCounts.of([1, 0])).p_value is None


def test_wilson_interval_of_a_rate() -> None:
    for successes, n in [(0, 10), (1, 10), (5, 10), (10, 10), (37, 120), (812, 1000), (3, 100_000)]:
        s = summarize(MetricCounts.of([1.0] * successes + [0.0] * (n - successes)), "binary")
        low, high = _wilson_ref(successes, n)
        assert s.ci is not None
        assert s.ci.low == pytest.approx(low, abs=TOL)
        assert s.ci.high == pytest.approx(high, abs=TOL)
        assert 0.0 <= s.ci.low <= s.ci.high <= 1.0


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2"),
    [(45, 100, 30, 100), (120, 1000, 100, 1000), (3, 20, 9, 25), (0, 50, 4, 50), (7000, 20000, 6800, 20000)],
)
def test_two_proportions_on_known_data(x1: int, n1: int, x2: int, n2: int) -> None:
    ref = _two_proportion_ref(x1, n1, x2, n2)
    got = two_proportions(MetricCounts(n1, x1, x1, True), MetricCounts(n2, x2, x2, True))
    assert got.test == "two_proportion_z"
    assert got.statistic == pytest.approx(ref["z"], rel=1e-9)
    assert got.p_value == pytest.approx(ref["p"], abs=TOL)
    assert got.ci is not None
    assert got.ci.low == pytest.approx(ref["low"], abs=TOL)
    assert got.ci.high == pytest.approx(ref["high"], abs=TOL)


def test_two_proportions_on_random_data() -> None:
    rng = np.random.default_rng(99)
    for _ in range(300):
        n1, n2 = (int(x) for x in rng.integers(1, 5000, size=2))
        x1, x2 = (
            int(rng.binomial(n1, rng.uniform(0.01, 0.99))),
            int(rng.binomial(n2, rng.uniform(0.01, 0.99))),
        )
        if x1 + x2 in (0, n1 + n2):
            continue
        level = float(rng.choice([0.9, 0.95, 0.99]))
        ref = _two_proportion_ref(x1, n1, x2, n2, level)
        got = compare(MetricCounts(n1, x1, x1, True), MetricCounts(n2, x2, x2, True), "binary", level)
        assert got.p_value == pytest.approx(ref["p"], abs=TOL)
        assert got.ci is not None
        assert got.ci.low == pytest.approx(ref["low"], abs=TOL)
        assert got.ci.high == pytest.approx(ref["high"], abs=TOL)


def test_degenerate_comparisons() -> None:
    # Identical rates, all 0 or all 1: nothing to test, and nothing significant.
    all_ones = MetricCounts(50, 50, 50, True)
    same = two_proportions(all_ones, all_ones)
    assert same.p_value == 1.0 and not same.significant
    # A constant continuous metric: no variance, so no p-value rather than a false certainty.
    constant = welch(MetricCounts.of([2.0] * 10), MetricCounts.of([3.0] * 10))
    assert constant.p_value is None and not constant.significant and constant.diff == -1.0


def test_metric_kind_comes_from_the_flags() -> None:
    binary = MetricCounts.of([0, 1, 1])
    assert binary.all_binary and metric_kind([binary, MetricCounts.of([1, 1])]) == "binary"
    assert metric_kind([binary, MetricCounts.of([0.5, 1])]) == "continuous"
    assert metric_kind([binary, MetricCounts()]) == "binary"  # a variant with no values yet
    assert metric_kind([MetricCounts()]) == "continuous"
    assert not binary.add(2.0).all_binary
    assert binary.add(1.0) == MetricCounts.of([0, 1, 1, 1])


@pytest.mark.parametrize(
    ("wins", "losses", "ties"), [(60, 30, 10), (5, 5, 0), (0, 7, 3), (12, 9, 4), (480, 520, 33)]
)
def test_preference_against_binomtest(wins: int, losses: int, ties: int) -> None:
    p = preference(wins, losses, ties)
    n = wins + losses + ties
    assert p.test == "sign_test"
    assert p.n == n
    assert p.win_rate == pytest.approx((wins + ties / 2) / n)
    assert p.p_value == pytest.approx(stats.binomtest(wins, wins + losses, 0.5).pvalue, abs=TOL)
    low, high = _wilson_ref(wins + ties / 2, n)
    assert p.ci is not None
    assert p.ci.low == pytest.approx(low, abs=TOL)
    assert p.ci.high == pytest.approx(high, abs=TOL)


def test_preference_on_random_counts() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        wins, losses, ties = (int(x) for x in rng.integers(0, 3000, size=3))
        if wins + losses == 0:
            continue
        p = preference(wins, losses, ties)
        assert p.p_value == pytest.approx(stats.binomtest(wins, wins + losses, 0.5).pvalue, abs=TOL)
        low, high = _wilson_ref(wins + ties / 2, wins + losses + ties)
        assert p.ci is not None
        assert p.ci.low == pytest.approx(low, abs=TOL)
        assert p.ci.high == pytest.approx(high, abs=TOL)


def test_preference_without_judgements() -> None:
    p = preference(0, 0, 0)
    assert p.win_rate is None and p.ci is None and p.p_value == 1.0 and not p.significant
    assert preference(90, 10).significant
    with pytest.raises(ValueError):
        preference(-1, 2)


def test_wilson_bounds_stay_in_the_unit_interval() -> None:
    assert wilson_interval(0, 0) is None
    for successes, n in [(0, 1), (1, 1), (0.5, 1), (0, 3), (3, 3)]:
        ci = wilson_interval(successes, n)
        assert ci is not None and 0.0 <= ci.low <= ci.high <= 1.0
