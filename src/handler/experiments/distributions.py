"""Normal, Student t and binomial tails in pure Python (stdlib `math` only).

scipy is far too large for the Lambda layer, and a campaign report needs only a few tails and
quantiles, so they are computed here and checked against scipy in tests/experiments (to 1e-6
absolute on p-values and quantiles, for df from 1 to 1e6 and beyond).

- normal: `math.erfc` for the tails; the quantile by Acklam's rational approximation refined by
  one Halley step (relative error about 1e-15).
- Student t and the binomial CDF: the regularized incomplete beta function I_x(a, b), by its
  continued fraction (Numerical Recipes `betacf`, modified Lentz). The prefactor
  x^a y^b / (a B(a, b)) is formed from Stirling's series when a parameter is large, so that huge
  df (Welch's df grows with the sample) do not lose digits in lgamma differences.
- t quantile: safeguarded Newton on log(tail) inside a bracket (bisection when a step leaves it),
  which converges for any df, including df = 1 where the tails are heavy.
"""

from __future__ import annotations

import math

_FPMIN = 1e-300
_EPS = 1e-16
_MAXIT = 1_000_000  # the fraction needs O(sqrt(max(a, b))) terms near the mean: 1e6 covers a, b ~ 1e11
_LOG_2PI = math.log(2.0 * math.pi)
_SQRT2 = math.sqrt(2.0)
# Above this df the t tail is the normal tail plus its first-order correction in 1/df (error
# O(1/df^2): below 1e-13 absolute), because I_x(df/2, 1/2) loses digits when df/2 is huge: an ulp
# of x moves it by df/2 ulps.
_LARGE_DF = 1e7


# --- normal -----------------------------------------------------------------------------------


def normal_cdf(x: float) -> float:
    """P(Z <= x), accurate in the lower tail."""
    return 0.5 * math.erfc(-x / _SQRT2)


def normal_sf(x: float) -> float:
    """P(Z > x), accurate in the upper tail (no 1 - cdf cancellation)."""
    return 0.5 * math.erfc(x / _SQRT2)


_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02)
_A5 = (-3.066479806614716e01, 2.506628277459239e00)
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01)
_B5 = -1.328068155288572e01
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549732539343734e00)
_C5 = (4.374664141464968e00, 2.938163982698783e00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
_P_LOW = 0.02425


def normal_ppf(p: float) -> float:
    """The z with P(Z <= z) = p: Acklam's approximation (1e-9) and one Halley step (1e-15)."""
    if not 0.0 < p < 1.0:
        if p == 0.0:
            return -math.inf
        if p == 1.0:
            return math.inf
        raise ValueError(f"probability must be in [0, 1], got {p!r}")
    if p > 0.5:
        return -normal_ppf(1.0 - p)  # exact subtraction for p >= 0.5; the lower tail keeps digits
    if p < _P_LOW:
        q = math.sqrt(-2.0 * math.log(p))
        c0, c1, c2, c3 = _C
        d0, d1, d2, d3 = _D
        x = (((((c0 * q + c1) * q + c2) * q + c3) * q + _C5[0]) * q + _C5[1]) / (
            (((d0 * q + d1) * q + d2) * q + d3) * q + 1.0
        )
    else:
        q = p - 0.5
        r = q * q
        a0, a1, a2, a3 = _A
        b0, b1, b2, b3 = _B
        x = (
            (((((a0 * r + a1) * r + a2) * r + a3) * r + _A5[0]) * r + _A5[1])
            * q
            / (((((b0 * r + b1) * r + b2) * r + b3) * r + _B5) * r + 1.0)
        )
    e = normal_cdf(x) - p
    u = e * math.sqrt(2.0 * math.pi) * math.exp(0.5 * x * x)
    return x - u / (1.0 + 0.5 * x * u)


# --- incomplete beta ----------------------------------------------------------------------------


def _stirling_correction(z: float) -> float:
    """lgamma(z) - ((z - 1/2) log z - z + log(2 pi) / 2), for z >= 10 (error below 1e-12)."""
    z2 = z * z
    return (1.0 / 12.0 - (1.0 / 360.0 - (1.0 / 1260.0 - 1.0 / (1680.0 * z2)) / z2) / z2) / z


def _lgamma_ratio(a: float, b: float) -> float:
    """lgamma(a + b) - lgamma(a) without the cancellation of two huge lgammas (a >= 10)."""
    return (
        (a - 0.5) * math.log1p(b / a)
        + b * math.log(a + b)
        - b
        + _stirling_correction(a + b)
        - _stirling_correction(a)
    )


def _log_prefactor(a: float, b: float, x: float, y: float, log_x: float, log_y: float) -> float:
    """log(x^a y^b / B(a, b)), with y = 1 - x given by the caller to full precision."""
    if a >= 10.0 and b >= 10.0:
        # Stirling on all three lgammas: the huge terms cancel analytically.
        s = a + b
        w = x * b - y * a  # x (a + b) - a
        return (
            a * math.log1p(w / a)
            + b * math.log1p(-w / b)
            + 0.5 * (math.log(a) + math.log(b) - math.log(s) - _LOG_2PI)
            + _stirling_correction(s)
            - _stirling_correction(a)
            - _stirling_correction(b)
        )
    big, small = (a, b) if a >= b else (b, a)
    log_ratio = _lgamma_ratio(big, small) if big >= 10.0 else math.lgamma(a + b) - math.lgamma(big)
    return log_ratio - math.lgamma(small) + a * log_x + b * log_y


def _beta_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of I_x(a, b) (Numerical Recipes betacf, modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) >= _FPMIN else _FPMIN)
    h = d
    for m in range(1, _MAXIT + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) >= _FPMIN else _FPMIN)
        c = 1.0 + aa / c
        c = c if abs(c) >= _FPMIN else _FPMIN
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) >= _FPMIN else _FPMIN)
        c = 1.0 + aa / c
        c = c if abs(c) >= _FPMIN else _FPMIN
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            return h
    raise ArithmeticError(f"incomplete beta fraction did not converge (a={a}, b={b}, x={x})")


def betainc_pair(
    a: float,
    b: float,
    x: float,
    y: float | None = None,
    log_x: float | None = None,
    log_y: float | None = None,
) -> tuple[float, float]:
    """(I_x(a, b), 1 - I_x(a, b)), each side computed directly so a small tail keeps its digits.

    `y` (= 1 - x) and the logs may be passed when the caller knows them more precisely than
    `1 - x` would give (the t distribution does: x = df / (df + t^2), y = t^2 / (df + t^2)).
    """
    if a <= 0.0 or b <= 0.0:
        raise ValueError("a and b must be positive")
    if y is None:
        y = 1.0 - x
    if x <= 0.0:
        return 0.0, 1.0
    if y <= 0.0:
        return 1.0, 0.0
    lx = math.log(x) if log_x is None else log_x
    ly = math.log(y) if log_y is None else log_y
    front = math.exp(_log_prefactor(a, b, x, y, lx, ly))
    if x < (a + 1.0) / (a + b + 2.0):
        lower = front * _beta_fraction(a, b, x) / a
        return lower, 1.0 - lower
    upper = front * _beta_fraction(b, a, y) / b
    return 1.0 - upper, upper


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    return betainc_pair(a, b, x)[0]


# --- Student t ----------------------------------------------------------------------------------


def _check_df(df: float) -> None:
    if not df > 0.0:  # also rejects NaN
        raise ValueError(f"degrees of freedom must be positive, got {df!r}")


def t_two_sided(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with `df` degrees of freedom (df need not be an integer)."""
    _check_df(df)
    if math.isnan(t):
        return math.nan
    if math.isinf(df):
        return math.erfc(abs(t) / _SQRT2)
    t2 = t * t
    if df >= _LARGE_DF:
        if math.isinf(t2):
            return 0.0
        density = math.exp(-0.5 * t2 - 0.5 * _LOG_2PI)
        return math.erfc(abs(t) / _SQRT2) + 2.0 * density * abs(t) * (t2 + 1.0) / (4.0 * df)
    if t2 == 0.0:
        return 1.0
    if math.isinf(t2):
        return 0.0
    s = df + t2
    # I_{df/(df+t^2)}(df/2, 1/2), with both x and 1 - x (and their logs) formed without cancellation.
    two_sided, _ = betainc_pair(
        0.5 * df, 0.5, df / s, t2 / s, log_x=-math.log1p(t2 / df), log_y=math.log(t2) - math.log(s)
    )
    return two_sided


def t_sf(t: float, df: float) -> float:
    """P(T > t)."""
    tail = 0.5 * t_two_sided(t, df)
    return tail if t >= 0 else 1.0 - tail


def t_cdf(t: float, df: float) -> float:
    """P(T <= t)."""
    return t_sf(-t, df)


def t_pdf(t: float, df: float) -> float:
    """Density of Student's t."""
    _check_df(df)
    if math.isinf(df):
        return math.exp(-0.5 * t * t - 0.5 * _LOG_2PI)
    half = 0.5 * df
    log_norm = _lgamma_ratio(half, 0.5) if half >= 10.0 else math.lgamma(half + 0.5) - math.lgamma(half)
    return math.exp(log_norm - 0.5 * math.log(df * math.pi) - (half + 0.5) * math.log1p(t * t / df))


def t_ppf(p: float, df: float) -> float:
    """The t with P(T <= t) = p: safeguarded Newton on log P(T > t) for the tail side."""
    _check_df(df)
    if not 0.0 < p < 1.0:
        if p == 0.0:
            return -math.inf
        if p == 1.0:
            return math.inf
        raise ValueError(f"probability must be in [0, 1], got {p!r}")
    if p == 0.5:
        return 0.0
    if math.isinf(df):
        return normal_ppf(p)
    q = p if p < 0.5 else 1.0 - p  # the tail to solve for; 1 - p is exact for p > 0.5
    t = _t_upper_quantile(q, df)
    return -t if p < 0.5 else t


def _t_upper_quantile(q: float, df: float) -> float:
    """The t > 0 with P(T > t) = q < 1/2."""
    log_q = math.log(q)

    def g(t: float) -> float:
        return math.log(0.5 * t_two_sided(t, df)) - log_q  # decreasing in t

    lo, hi = 0.0, max(1.0, 2.0 * -normal_ppf(q))
    while g(hi) > 0.0:
        lo, hi = hi, hi * 4.0
        if math.isinf(hi):
            return math.inf
    # A start inside the bracket: the normal quantile, pushed out for heavy tails.
    t = min(max(-normal_ppf(q), lo), hi)
    if not lo < t < hi:
        t = 0.5 * (lo + hi)
    for _ in range(500):
        gt = g(t)
        if gt == 0.0:
            return t
        if gt > 0.0:
            lo = t
        else:
            hi = t
        tail = 0.5 * t_two_sided(t, df)
        slope = -t_pdf(t, df) / tail if tail > 0.0 else -math.inf
        step = gt / slope if slope != 0.0 and math.isfinite(slope) else math.nan
        candidate = t - step
        if not (lo < candidate < hi) or math.isnan(candidate):
            candidate = math.sqrt(lo * hi) if lo > 0.0 and hi > 4.0 * lo else 0.5 * (lo + hi)
        if abs(candidate - t) <= 1e-15 * max(1.0, abs(t)) or hi - lo <= 1e-15 * hi:
            return candidate
        t = candidate
    return t


# --- binomial -----------------------------------------------------------------------------------


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), as I_{1-p}(n - k, k + 1)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return betainc_pair(float(n - k), float(k + 1), 1.0 - p, p)[0]


def sign_test(successes: int, failures: int) -> float:
    """Exact two-sided binomial test of p = 1/2 (the sign test): 2 P(X <= min), capped at 1.

    Under p = 1/2 the distribution is symmetric, so this equals the sum of the probabilities of all
    outcomes no likelier than the observed one (scipy.stats.binomtest's two-sided p-value).
    """
    if successes < 0 or failures < 0:
        raise ValueError("counts must be non-negative")
    n = successes + failures
    if n == 0 or successes == failures:
        return 1.0
    return min(1.0, 2.0 * binom_cdf(min(successes, failures), n, 0.5))
