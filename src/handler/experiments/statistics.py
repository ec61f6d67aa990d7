"""Campaign statistics from sufficient statistics: summaries, tests against the control, preference
win rates and the stopping rule. Pure Python (see `distributions` for why not scipy).

The store keeps, per campaign variant and metric, only n, the sum, the sum of squares and whether
every value was 0 or 1 (`MetricCounts`), so everything here is computed from those.

Choices, and why:

- Means of 0/1 metrics get the Wilson score interval: unlike the Wald interval it stays inside
  [0, 1] and keeps its coverage near 0 and 1 and at small n. Continuous metrics get the Student t
  interval (mean +- t * s / sqrt(n)). Below n = 2 there is no sample variance: no interval.
- A variant against the control: Welch's t-test (unequal variances, Welch-Satterthwaite df) for
  continuous metrics, whose interval for the difference is exactly the test inverted; the pooled
  two-proportion z-test for 0/1 metrics (the textbook test, exact null variance), with Newcombe's
  hybrid score interval for the difference (method 10: built from the two Wilson intervals, it
  stays in [-1, 1] and has good coverage where the unpooled Wald interval has not). The pooled test
  and Newcombe's interval can disagree right at the boundary; the verdict follows the p-value.
- Preferences (pairwise judgements a vs b): the win rate counts ties as half a win, with a Wilson
  interval over all judgements; the p-value is the exact two-sided sign test on wins vs losses,
  ties dropped (the usual treatment of ties: they carry no information about which is better).
- The stopping rule (`evaluate_stop`): see its docstring for what it does and does not guarantee.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from handler.experiments.distributions import normal_ppf, normal_sf, sign_test, t_ppf, t_two_sided

MetricKind = Literal["binary", "continuous"]
TestName = Literal["welch_t", "two_proportion_z"]
PreferenceTest = Literal["sign_test"]


@dataclass(frozen=True)
class MetricCounts:
    """What the store keeps per variant and metric: enough for means, variances and the tests."""

    n: int = 0
    sum: float = 0.0
    sum_sq: float = 0.0
    #: Every value observed so far was exactly 0 or 1 (vacuously true while n == 0).
    all_binary: bool = True

    @classmethod
    def of(cls, values: Iterable[float]) -> MetricCounts:
        """The counts of a list of values (tests, backfills)."""
        xs = [float(v) for v in values]
        return cls(
            n=len(xs),
            sum=math.fsum(xs),
            sum_sq=math.fsum(x * x for x in xs),
            all_binary=all(x in (0.0, 1.0) for x in xs),
        )

    def add(self, value: float) -> MetricCounts:
        """These counts with one more value."""
        v = float(value)
        return MetricCounts(
            self.n + 1, self.sum + v, self.sum_sq + v * v, self.all_binary and v in (0.0, 1.0)
        )

    @property
    def mean(self) -> float | None:
        return self.sum / self.n if self.n else None

    @property
    def variance(self) -> float | None:
        """Sample variance (n - 1 denominator), from the sums; clamped at 0 against rounding.

        sum_sq - sum^2 / n cancels when the mean is large against the spread (latencies in ms
        are fine; values like 1e9 +- 1 are not): the store's sums cannot avoid that.
        """
        if self.n < 2:
            return None
        return max(0.0, (self.sum_sq - self.sum * self.sum / self.n) / (self.n - 1))


def metric_kind(counts: Iterable[MetricCounts]) -> MetricKind:
    """ "binary" when every value of every variant was 0 or 1 (and there was a value), else
    "continuous": one kind per metric, so all variants are compared by the same test."""
    seen = False
    for c in counts:
        if c.n and not c.all_binary:
            return "continuous"
        seen = seen or c.n > 0
    return "binary" if seen else "continuous"


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")


def _z(confidence: float) -> float:
    return -normal_ppf(0.5 * (1.0 - confidence))


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def wilson_interval(successes: float, n: float, confidence: float = 0.95) -> Interval | None:
    """Wilson score interval for a proportion (successes may be fractional: ties count half)."""
    _check_confidence(confidence)
    if n <= 0:
        return None
    z = _z(confidence)
    p = successes / n
    z2n = z * z / n
    center = (p + 0.5 * z2n) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(max(0.0, p * (1.0 - p) / n + z2n / (4.0 * n)))
    return Interval(max(0.0, center - half), min(1.0, center + half))


@dataclass(frozen=True)
class Summary:
    """One variant's metric: n, mean, sample variance, and the interval for the mean."""

    n: int
    mean: float | None
    variance: float | None
    ci: Interval | None
    kind: MetricKind
    confidence: float


def summarize(counts: MetricCounts, kind: MetricKind, confidence: float = 0.95) -> Summary:
    """Wilson interval for 0/1 metrics, Student t for continuous ones; none below n = 2."""
    _check_confidence(confidence)
    mean, variance = counts.mean, counts.variance
    ci: Interval | None = None
    if mean is not None and variance is not None:
        if kind == "binary":
            ci = wilson_interval(counts.sum, counts.n, confidence)
        else:
            half = t_ppf(0.5 + 0.5 * confidence, counts.n - 1) * math.sqrt(variance / counts.n)
            ci = Interval(mean - half, mean + half)
    return Summary(counts.n, mean, variance, ci, kind, confidence)


@dataclass(frozen=True)
class Comparison:
    """A variant against the control: difference of means (variant - control), its interval,
    the two-sided p-value, and whether that is below `alpha` (= 1 - confidence)."""

    test: TestName
    diff: float | None
    ci: Interval | None
    p_value: float | None
    statistic: float | None
    df: float | None  # Welch's df; None for the z-test
    confidence: float

    @property
    def alpha(self) -> float:
        return 1.0 - self.confidence

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < self.alpha


def _empty(test: TestName, confidence: float, diff: float | None = None) -> Comparison:
    return Comparison(test, diff, None, None, None, None, confidence)


def welch(variant: MetricCounts, control: MetricCounts, confidence: float = 0.95) -> Comparison:
    """Welch's t-test and interval; needs n >= 2 on both sides."""
    _check_confidence(confidence)
    va, vb = variant.variance, control.variance
    if variant.mean is None or control.mean is None or va is None or vb is None:
        diff = variant.mean - control.mean if variant.mean is not None and control.mean is not None else None
        return _empty("welch_t", confidence, diff)
    diff = variant.mean - control.mean
    sa, sb = va / variant.n, vb / control.n
    se2 = sa + sb
    if se2 == 0.0:
        # No spread on either side: the data cannot tell noise from effect. Report no p-value
        # rather than 0 or 1, so that constant metrics never stop a campaign.
        return Comparison("welch_t", diff, Interval(diff, diff), None, None, None, confidence)
    se = math.sqrt(se2)
    df = se2 * se2 / (sa * sa / (variant.n - 1) + sb * sb / (control.n - 1))
    stat = diff / se
    half = t_ppf(0.5 + 0.5 * confidence, df) * se
    return Comparison(
        "welch_t", diff, Interval(diff - half, diff + half), t_two_sided(stat, df), stat, df, confidence
    )


def two_proportions(variant: MetricCounts, control: MetricCounts, confidence: float = 0.95) -> Comparison:
    """Pooled two-proportion z-test, with Newcombe's hybrid score interval for the difference."""
    _check_confidence(confidence)
    if variant.n == 0 or control.n == 0:
        return _empty("two_proportion_z", confidence)
    p1, p2 = variant.sum / variant.n, control.sum / control.n
    diff = p1 - p2
    w1 = wilson_interval(variant.sum, variant.n, confidence)
    w2 = wilson_interval(control.sum, control.n, confidence)
    assert w1 is not None and w2 is not None
    ci = Interval(
        diff - math.sqrt((p1 - w1.low) ** 2 + (w2.high - p2) ** 2),
        diff + math.sqrt((w1.high - p1) ** 2 + (p2 - w2.low) ** 2),
    )
    pooled = (variant.sum + control.sum) / (variant.n + control.n)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / variant.n + 1.0 / control.n))
    if se == 0.0:  # all 0 or all 1 on both sides: identical, nothing to test
        return Comparison("two_proportion_z", diff, ci, 1.0, 0.0, None, confidence)
    stat = diff / se
    return Comparison("two_proportion_z", diff, ci, 2.0 * normal_sf(abs(stat)), stat, None, confidence)


def choose_test(kind: MetricKind) -> TestName:
    """The test a metric of this kind is compared by."""
    return "two_proportion_z" if kind == "binary" else "welch_t"


def compare(
    variant: MetricCounts, control: MetricCounts, kind: MetricKind, confidence: float = 0.95
) -> Comparison:
    """The comparison for the metric's kind: two-proportion z for 0/1 metrics, else Welch's t."""
    if kind == "binary":
        return two_proportions(variant, control, confidence)
    return welch(variant, control, confidence)


@dataclass(frozen=True)
class Preference:
    """Pairwise judgements of `a` against `b`: a's win rate (ties half), its Wilson interval, and
    the exact two-sided sign test of wins against losses (ties dropped)."""

    wins: int
    losses: int
    ties: int
    win_rate: float | None
    ci: Interval | None
    p_value: float
    confidence: float
    test: PreferenceTest = "sign_test"

    @property
    def n(self) -> int:
        return self.wins + self.losses + self.ties

    @property
    def significant(self) -> bool:
        return self.p_value < 1.0 - self.confidence


def preference(wins: int, losses: int, ties: int = 0, confidence: float = 0.95) -> Preference:
    """Win rate of a over b from pairwise judgements."""
    _check_confidence(confidence)
    if min(wins, losses, ties) < 0:
        raise ValueError("wins, losses and ties must be non-negative")
    n = wins + losses + ties
    score = wins + 0.5 * ties
    return Preference(
        wins,
        losses,
        ties,
        score / n if n else None,
        wilson_interval(score, n, confidence),
        sign_test(wins, losses),
        confidence,
    )


# --- stopping -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StopRule:
    """`stop: {metric, min_samples, confidence}` from the campaign config, plus two choices.

    against: "all" - the best variant must beat every other variant; "control" - it must beat the
    control (or, when the control is best, every challenger must lose to it).
    """

    metric: str
    min_samples: int
    confidence: float = 0.95
    higher_is_better: bool = True
    against: Literal["all", "control"] = "all"
    bonferroni: bool = True

    def __post_init__(self) -> None:
        _check_confidence(self.confidence)
        if self.min_samples < 2:
            raise ValueError("min_samples must be at least 2 (a variance needs two values)")


@dataclass(frozen=True)
class StopDecision:
    done: bool
    winner: str | None
    reason: str
    kind: MetricKind
    #: The significance level each comparison was held to (Bonferroni-divided when asked).
    alpha: float
    #: (variant, other, comparison of variant - other), the tests the decision rests on.
    comparisons: tuple[tuple[str, str, Comparison], ...] = field(default=())


def evaluate_stop(
    rule: StopRule, stats: Mapping[str, Mapping[str, MetricCounts]], control: str | None = None
) -> StopDecision:
    """Whether the campaign is decided on `rule.metric`, and which variant won.

    `stats` is variant -> metric -> counts. The campaign is done when every variant has at least
    `min_samples` values of the metric and the variant with the best mean is significantly better
    (two-sided test at level alpha, in the right direction) than every other variant (or than the
    control, see `StopRule.against`). With k variants there are k - 1 comparisons; alpha is
    (1 - confidence) / (k - 1) under Bonferroni, which bounds the chance of a false winner at
    1 - confidence for one look, whichever variants are truly equal.

    Repeated looks (peeking): this is a fixed-level rule. Evaluated once, at a sample size fixed
    in advance (`min_samples` as the planned size), it has the error rate above. Evaluated after
    every new value, a campaign whose variants are all equal will eventually cross the threshold
    by chance (the false-stop rate grows with the number of looks, towards 1); `min_samples` only
    delays that. For a guarantee under continuous monitoring, evaluate at planned sample sizes,
    raise the confidence (e.g. 0.99 for a handful of looks), or replace this rule by a sequential
    test (alpha spending, mixture SPRT). Equal variants with identical data never stop (p = 1),
    and a constant metric (no variance on either side) never stops.
    """
    if control is not None and control not in stats:
        raise ValueError(f"control {control!r} is not one of the variants")
    if rule.against == "control" and control is None:
        raise ValueError('against="control" needs the control variant')
    names = list(stats)
    counts = {name: stats[name].get(rule.metric, MetricCounts()) for name in names}
    kind = metric_kind(counts.values())
    alpha = 1.0 - rule.confidence
    if len(names) < 2:
        return StopDecision(False, None, "a campaign needs two variants to compare", kind, alpha)
    if rule.bonferroni:
        alpha /= len(names) - 1
    short = [name for name in names if counts[name].n < rule.min_samples]
    if short:
        return StopDecision(
            False,
            None,
            f"waiting for {rule.min_samples} values of {rule.metric!r} on every variant "
            f"({', '.join(f'{name}: {counts[name].n}' for name in short)})",
            kind,
            alpha,
        )
    sign = 1.0 if rule.higher_is_better else -1.0
    # Best mean first; ties keep the configured order (and then cannot be significant anyway).
    ranked = sorted(names, key=lambda name: -sign * (counts[name].mean or 0.0))
    best = ranked[0]
    # Each comparison at the adjusted level, so its interval is the simultaneous one.
    level = 1.0 - alpha

    def better(a: str, b: str) -> tuple[str, str, Comparison]:
        return a, b, compare(counts[a], counts[b], kind, level)

    if rule.against == "control" and best != control:
        assert control is not None
        tests: tuple[tuple[str, str, Comparison], ...] = (better(best, control),)
    else:
        tests = tuple(better(best, other) for other in ranked[1:])
    won = all(c.significant and c.diff is not None and sign * c.diff > 0 for _, _, c in tests)
    if not won:
        losing = [f"{b} (p = {_p(c.p_value)})" for _, b, c in tests if not c.significant]
        return StopDecision(
            False,
            None,
            f"{best} leads on {rule.metric!r} but not significantly against "
            f"{', '.join(losing) or 'all others'} at alpha = {alpha:.3g}",
            kind,
            alpha,
            tests,
        )
    against = "the control" if rule.against == "control" and best != control else "every other variant"
    return StopDecision(
        True,
        best,
        f"{best} is significantly {'higher' if sign > 0 else 'lower'} on {rule.metric!r} than "
        f"{against} at alpha = {alpha:.3g}",
        kind,
        alpha,
        tests,
    )


def _p(p: float | None) -> str:
    return "n/a" if p is None else f"{p:.3g}"
