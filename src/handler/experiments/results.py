"""A campaign's results as one typed object: what the results endpoint returns and the report draws.

`build_results` turns the store's counts (variant -> metric -> `MetricCounts`) and pairwise
preference counts into `CampaignResults`. The control is the variant named as such, else the
first variant listed (the campaign config's order). Comparisons against the control are held to
a Bonferroni-divided level when there are several challengers, and their intervals are drawn at
that level too, so an interval excludes 0 exactly when (Welch) or almost exactly when (z-test
vs Newcombe) the comparison is significant.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Literal

from pydantic import BaseModel

from handler.experiments.statistics import (
    Comparison,
    Interval,
    MetricCounts,
    MetricKind,
    PreferenceTest,
    StopRule,
    TestName,
    choose_test,
    compare,
    evaluate_stop,
    metric_kind,
    preference,
    summarize,
)

TEST_LABELS: dict[str, str] = {
    "welch_t": "Welch's t-test",
    "two_proportion_z": "two-proportion z-test (pooled)",
    "sign_test": "exact sign test (ties dropped)",
}


class Bounds(BaseModel):
    low: float
    high: float


class VariantStatistics(BaseModel):
    variant: str
    n: int
    mean: float | None
    variance: float | None
    ci: Bounds | None
    is_control: bool = False


#: Named apart from the results endpoint's `VariantResult` (one OpenAPI schema name each).
VariantResult = VariantStatistics


class ComparisonResult(BaseModel):
    variant: str
    control: str
    test: TestName
    diff: float | None
    ci: Bounds | None
    p_value: float | None
    statistic: float | None
    df: float | None
    #: The level the comparison is held to: 1 - alpha, with alpha Bonferroni-divided.
    confidence: float
    significant: bool


class MetricResult(BaseModel):
    metric: str
    kind: MetricKind
    test: TestName
    #: Level of each variant's interval for its mean.
    confidence: float
    higher_is_better: bool = True
    variants: list[VariantResult]
    comparisons: list[ComparisonResult]
    verdict: str


class PreferenceResult(BaseModel):
    variant_a: str
    variant_b: str
    metric: str | None = None  # the criterion the judgements were about, when it is known
    wins: int
    losses: int
    ties: int
    n: int
    win_rate: float | None
    ci: Bounds | None
    p_value: float
    test: PreferenceTest
    significant: bool


class StopResult(BaseModel):
    metric: str
    min_samples: int
    confidence: float
    done: bool
    winner: str | None
    reason: str
    alpha: float


class CampaignStatistics(BaseModel):
    campaign_id: str
    key: str
    name: str
    status: Literal["active", "paused", "ended", "completed"]
    control: str | None
    winner: str | None = None
    confidence: float = 0.95
    metrics: list[MetricResult] = []
    preferences: list[PreferenceResult] = []
    stop: StopResult | None = None


CampaignResults = CampaignStatistics


def _bounds(interval: Interval | None) -> Bounds | None:
    return None if interval is None else Bounds(low=interval.low, high=interval.high)


def _comparison(variant: str, control: str, c: Comparison) -> ComparisonResult:
    return ComparisonResult(
        variant=variant,
        control=control,
        test=c.test,
        diff=c.diff,
        ci=_bounds(c.ci),
        p_value=c.p_value,
        statistic=c.statistic,
        df=c.df,
        confidence=c.confidence,
        significant=c.significant,
    )


def _verdict(
    metric: str, control: str | None, comparisons: list[ComparisonResult], higher_is_better: bool
) -> str:
    if control is None or not comparisons:
        return f"Nothing to compare on {metric}: one variant only."
    if all(c.p_value is None for c in comparisons):
        return f"Not enough data on {metric} to compare with {control} yet."
    level = comparisons[0].confidence
    significant = [c for c in comparisons if c.significant and c.diff is not None]
    if not significant:
        return f"No significant difference from {control} on {metric} (at {100 * level:.4g}% confidence)."
    parts = []
    for c in significant:
        assert c.diff is not None
        direction = "higher" if c.diff > 0 else "lower"
        good = (c.diff > 0) == higher_is_better
        parts.append(
            f"{c.variant} is significantly {direction} than {control} ({'better' if good else 'worse'})"
        )
    return "; ".join(parts) + f" on {metric} (at {100 * level:.4g}% confidence)."


def build_results(
    campaign_id: str,
    key: str,
    name: str,
    variants: Sequence[str],
    stats: Mapping[str, Mapping[str, MetricCounts]],
    *,
    control: str | None = None,
    status: Literal["active", "paused", "ended", "completed"] = "active",
    preferences: Mapping[tuple[str, str] | tuple[str, str, str], tuple[int, int, int]] | None = None,
    stop: StopRule | None = None,
    confidence: float = 0.95,
    lower_is_better: Collection[str] = (),
) -> CampaignResults:
    """The results of a campaign from its counts.

    `preferences` maps (a, b), or (a, b, metric), to a's (wins, losses, ties) against b. `lower_is_better` names the
    metrics where smaller wins (latency, cost); it only words the verdict (the stop rule has its
    own `higher_is_better`). A stop rule that is met marks the campaign completed with its winner.
    """
    names = list(variants) or list(stats)
    if control is None and names:
        control = names[0]
    if control is not None and control not in names:
        raise ValueError(f"control {control!r} is not one of the variants")
    metric_names = sorted({metric for variant in names for metric in stats.get(variant, {})})
    challengers = [variant for variant in names if variant != control]
    level = 1.0 - (1.0 - confidence) / max(1, len(challengers))

    metrics: list[MetricResult] = []
    for metric in metric_names:
        counts = {variant: stats.get(variant, {}).get(metric, MetricCounts()) for variant in names}
        kind = metric_kind(counts.values())
        rows = []
        for variant in names:
            s = summarize(counts[variant], kind, confidence)
            rows.append(
                VariantResult(
                    variant=variant,
                    n=s.n,
                    mean=s.mean,
                    variance=s.variance,
                    ci=_bounds(s.ci),
                    is_control=variant == control,
                )
            )
        comparisons = (
            [_comparison(v, control, compare(counts[v], counts[control], kind, level)) for v in challengers]
            if control is not None
            else []
        )
        higher = metric not in lower_is_better
        metrics.append(
            MetricResult(
                metric=metric,
                kind=kind,
                test=choose_test(kind),
                confidence=confidence,
                higher_is_better=higher,
                variants=rows,
                comparisons=comparisons,
                verdict=_verdict(metric, control, comparisons, higher),
            )
        )

    pairs: list[PreferenceResult] = []
    for pair, (wins, losses, ties) in (preferences or {}).items():
        a, b = pair[0], pair[1]
        p = preference(wins, losses, ties, confidence)
        pairs.append(
            PreferenceResult(
                variant_a=a,
                variant_b=b,
                metric=pair[2] if len(pair) == 3 else None,
                wins=wins,
                losses=losses,
                ties=ties,
                n=p.n,
                win_rate=p.win_rate,
                ci=_bounds(p.ci),
                p_value=p.p_value,
                test=p.test,
                significant=p.significant,
            )
        )

    stop_result: StopResult | None = None
    winner: str | None = None
    if stop is not None:
        decision = evaluate_stop(stop, {variant: stats.get(variant, {}) for variant in names}, control)
        stop_result = StopResult(
            metric=stop.metric,
            min_samples=stop.min_samples,
            confidence=stop.confidence,
            done=decision.done,
            winner=decision.winner,
            reason=decision.reason,
            alpha=decision.alpha,
        )
        if decision.done:
            status, winner = "completed", decision.winner
    return CampaignResults(
        campaign_id=campaign_id,
        key=key,
        name=name,
        status=status,
        control=control,
        winner=winner,
        confidence=confidence,
        metrics=metrics,
        preferences=pairs,
        stop=stop_result,
    )
