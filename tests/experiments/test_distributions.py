"""The pure-Python tails and quantiles against scipy, to 1e-6 absolute (the report's precision)."""

from __future__ import annotations

import math
import random

import pytest
from scipy import stats

from handler.experiments import distributions as d

pytestmark = pytest.mark.unit

TOL = 1e-6
DFS = [1, 1.5, 2, 2.5, 3, 4, 5, 7.3, 10, 17.8, 30, 100, 999.5, 1e4, 1e5, 1e6, 1e7, 1e9]
TS = [0.0, 1e-3, 0.1, 0.5, 1.0, 1.5, 1.96, 2.0, 2.5, 3.0, 4.0, 6.0, 10.0, 50.0, 1e3, 1e6]
PS = [1e-10, 1e-6, 1e-4, 1e-3, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.4, 0.5, 0.6, 0.9, 0.95, 0.975, 0.99]
PS += [0.995, 0.999, 1 - 1e-6]


@pytest.mark.parametrize("df", DFS)
def test_t_cdf_sf_and_two_sided_match_scipy(df: float) -> None:
    for t in TS + [-t for t in TS]:
        assert d.t_cdf(t, df) == pytest.approx(stats.t.cdf(t, df), abs=TOL), (t, df)
        assert d.t_sf(t, df) == pytest.approx(stats.t.sf(t, df), abs=TOL), (t, df)
        assert d.t_two_sided(t, df) == pytest.approx(2 * stats.t.sf(abs(t), df), abs=TOL), (t, df)
        assert d.t_pdf(t, df) == pytest.approx(stats.t.pdf(t, df), abs=TOL), (t, df)


@pytest.mark.parametrize("df", DFS)
def test_t_small_tails_keep_their_relative_precision(df: float) -> None:
    for t in (2.0, 4.0, 6.0):
        ref = stats.t.sf(t, df)
        assert d.t_sf(t, df) == pytest.approx(ref, rel=1e-6), (t, df)


@pytest.mark.parametrize("df", DFS)
def test_t_ppf_matches_scipy(df: float) -> None:
    for p in PS:
        ref = stats.t.ppf(p, df)
        # Absolute where an interval bound lives; relative for the far tails of df ~ 1 (t ~ 1e10).
        assert d.t_ppf(p, df) == pytest.approx(ref, abs=TOL, rel=1e-12), (p, df)
        assert d.t_cdf(d.t_ppf(p, df), df) == pytest.approx(p, rel=1e-9), (p, df)


def test_t_at_the_edges() -> None:
    assert d.t_ppf(0.5, 3) == 0.0
    assert d.t_ppf(0.0, 3) == -math.inf
    assert d.t_ppf(1.0, 3) == math.inf
    assert d.t_two_sided(math.inf, 3) == 0.0
    assert d.t_two_sided(0.0, 3) == 1.0
    assert d.t_cdf(2.0, math.inf) == pytest.approx(stats.norm.cdf(2.0), abs=1e-15)
    # Cauchy (df = 1) has a closed form: scipy itself is off by ~1e-9 right next to 0.
    for t in (1e-8, 1e-4, 0.3, 7.0, 1e5):
        assert d.t_sf(t, 1) == pytest.approx(0.5 - math.atan(t) / math.pi, abs=1e-15)
    with pytest.raises(ValueError):
        d.t_cdf(1.0, 0)
    with pytest.raises(ValueError):
        d.t_ppf(1.5, 3)


def test_normal_matches_scipy() -> None:
    for x in [-38.0, -20.0, -8.0, -3.0, -1.96, -0.5, 0.0, 0.5, 1.0, 1.96, 3.0, 8.0, 20.0]:
        assert d.normal_cdf(x) == pytest.approx(stats.norm.cdf(x), abs=1e-15)
        assert d.normal_sf(x) == pytest.approx(stats.norm.sf(x), abs=1e-15)
    for p in [1e-300, 1e-100, 1e-20, *PS, 0.02425, 1 - 0.02425, 1 - 1e-12]:
        assert d.normal_ppf(p) == pytest.approx(stats.norm.ppf(p), abs=1e-12, rel=1e-14), p


def test_incomplete_beta_matches_scipy() -> None:
    rng = random.Random(7)
    for _ in range(400):
        a = 10 ** rng.uniform(-1, 5)
        b = 10 ** rng.uniform(-1, 5)
        x = rng.random()
        assert d.betainc(a, b, x) == pytest.approx(stats.beta.cdf(x, a, b), abs=1e-9), (a, b, x)


def test_binomial_and_sign_test_match_scipy() -> None:
    rng = random.Random(11)
    for _ in range(300):
        n = rng.choice([1, 2, 5, 17, 100, 1000, 10**5])
        k = rng.randint(0, n)
        p = rng.random()
        assert d.binom_cdf(k, n, p) == pytest.approx(stats.binom.cdf(k, n, p), abs=1e-9), (k, n, p)
    for _ in range(300):
        n = rng.choice([1, 2, 9, 40, 500, 10**4, 10**6])
        wins = rng.randint(0, n)
        losses = n - wins if rng.random() < 0.5 else rng.randint(0, n)
        if wins + losses == 0:
            continue
        ref = stats.binomtest(wins, wins + losses, 0.5).pvalue
        assert d.sign_test(wins, losses) == pytest.approx(ref, abs=1e-9), (wins, losses)
    # Near the middle of large samples, where the p-value matters.
    for n in (10**3, 10**5, 10**6):
        for wins in (n // 2 - int(3 * math.sqrt(n)), n // 2 - int(math.sqrt(n)), n // 2 - 1, n // 2):
            ref = stats.binomtest(wins, n, 0.5).pvalue
            assert d.sign_test(wins, n - wins) == pytest.approx(ref, abs=1e-9), (wins, n)
    assert d.sign_test(0, 0) == 1.0
    assert d.sign_test(5, 5) == 1.0
