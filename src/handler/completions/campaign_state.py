"""Campaigns that decide: the stop rule checked as feedback arrives, and its decision overlaid on the
project config that routes requests.

SSM config is read-only at runtime, so a campaign's end is a state item in DynamoDB (written once,
store/campaigns.py). `CampaignStateConfig` wraps the config source: for an active campaign with a
stop rule it reads that item once per config max age (a completed state is kept for good: it never
changes back) and serves the config with the campaign `completed` and its winner, so assignment
(campaigns.route) stays a pure function of the config and a warm request does no extra I/O.

Metrics: a feedback metric by its name, a session outcome as `outcome:<metric>`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from handler.config.models import CampaignConfig, ProjectConfig
from handler.config.source import ConfigSource
from handler.experiments.statistics import MetricCounts, StopRule, evaluate_stop
from handler.store.base import CampaignStateStore
from handler.store.values import CampaignCounters, CampaignState, MetricStats, VariantStats

OUTCOME_PREFIX = "outcome:"


def counts_of(stats: MetricStats) -> MetricCounts:
    return MetricCounts(n=stats.count, sum=stats.sum, sum_sq=stats.sum_sq, all_binary=stats.non_binary == 0)


def variant_metrics(
    names: Iterable[str], variants: Iterable[VariantStats]
) -> dict[str, dict[str, MetricCounts]]:
    """variant -> metric -> counts for the variants `names` (in that order; absent ones empty)."""
    by_name = {v.variant: v for v in variants}
    out: dict[str, dict[str, MetricCounts]] = {}
    for name in names:
        v = by_name.get(name)
        metrics: dict[str, MetricCounts] = {}
        if v is not None:
            metrics.update((m, counts_of(s)) for m, s in v.feedback.items())
            metrics.update((f"{OUTCOME_PREFIX}{m}", counts_of(s)) for m, s in v.outcomes.items())
        out[name] = metrics
    return out


def stop_rule(campaign: CampaignConfig) -> StopRule | None:
    stop = campaign.stop
    if stop is None:
        return None
    return StopRule(
        metric=stop.metric,
        min_samples=stop.min_samples,
        confidence=stop.confidence,
        higher_is_better=stop.higher_is_better,
    )


class CampaignStateConfig:
    """A `ConfigSource` that serves each project with its campaigns' recorded ends overlaid."""

    def __init__(
        self,
        inner: ConfigSource,
        states: CampaignStateStore,
        max_age_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._inner = inner
        self._states = states
        self._max_age_s = max_age_s
        self._clock = clock
        self._known: dict[str, tuple[float, CampaignState | None]] = {}  # id -> (fresh until, state)
        # project -> (its config, the decisions overlaid, the overlaid copy)
        self._copies: dict[str, tuple[ProjectConfig, list[tuple[str, str | None]], ProjectConfig]] = {}
        self._lock = threading.Lock()

    def project(self, name: str) -> ProjectConfig:
        config = self._inner.project(name)
        overlaid = self._overlay(config, read=True)
        assert overlaid is not None
        return overlaid

    def cached(self, name: str) -> ProjectConfig | None:
        config = self._inner.cached(name)
        return None if config is None else self._overlay(config, read=False)

    def secret(self, name: str) -> str:
        return self._inner.secret(name)

    def project_names(self) -> list[str]:
        return self._inner.project_names()

    def note(self, state: CampaignState) -> None:
        """A state this process just recorded or read: in effect for its next request."""
        with self._lock:
            self._known[state.campaign_id] = (float("inf"), state)

    def _state(self, campaign_id: str, read: bool) -> tuple[bool, CampaignState | None]:
        """(known, state): unknown when not fresh and `read` is False (the caller must do I/O)."""
        now = self._clock()
        entry = self._known.get(campaign_id)
        if entry is not None and now < entry[0]:
            return True, entry[1]
        if not read:
            return False, None
        state = self._states.campaign_state(campaign_id)
        with self._lock:
            done = state is not None and state.status == "completed"
            self._known[campaign_id] = (float("inf") if done else now + self._max_age_s, state)
        return True, state

    def _overlay(self, config: ProjectConfig, read: bool) -> ProjectConfig | None:
        decided: list[tuple[str, str | None]] = []  # (campaign key, winner)
        for key, campaign in config.campaigns.items():
            if campaign.status != "active" or campaign.stop is None:
                continue  # only a stop rule ends a campaign at runtime
            known, state = self._state(str(campaign.id), read)
            if not known:
                return None
            if state is not None and state.status == "completed":
                decided.append((key, state.winner if state.winner in campaign.variants else None))
        if not decided:
            return config
        memo = self._copies.get(config.project)
        if memo is not None and memo[0] is config and memo[1] == decided:
            return memo[2]  # the same config and decisions: the copy made before, not a new one
        campaigns = dict(config.campaigns)
        for key, winner in decided:
            campaigns[key] = campaigns[key].model_copy(update={"status": "completed", "winner": winner})
        overlaid = config.model_copy(update={"campaigns": campaigns})
        self._copies[config.project] = (config, decided, overlaid)
        return overlaid


class CountersStore(CampaignStateStore, Protocol):
    def campaign_counters(self, campaign_id: str) -> CampaignCounters: ...


class CampaignStops:
    """Checks a campaign's stop rule after a value of its metric was counted (never by scanning:
    one read of the campaign's partition, and one conditional write when it is decided)."""

    def __init__(
        self,
        store: CountersStore,
        config: CampaignStateConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._config = config
        self._clock = clock

    async def check(self, project: ProjectConfig, campaign_id: str, metric: str) -> CampaignState | None:
        """The campaign's state once decided (None while it runs or has no rule on `metric`)."""
        campaign = next((c for c in project.campaigns.values() if str(c.id) == campaign_id), None)
        if campaign is None or campaign.status != "active" or campaign.stop is None:
            return None
        rule = stop_rule(campaign)
        if rule is None or rule.metric != metric:
            return None
        counters = await asyncio.to_thread(self._store.campaign_counters, campaign_id)
        if counters.state is not None:
            self._remember(counters.state)
            return counters.state
        names = [name for name, weight in campaign.variants.items() if weight > 0]
        decision = evaluate_stop(
            rule,
            variant_metrics(names, counters.variants),
            campaign.control_variant if campaign.control_variant in names else None,
        )
        if not decision.done:
            return None
        state = CampaignState(
            campaign_id=campaign_id,
            status="completed",
            winner=decision.winner,
            reason=decision.reason,
            ended=self._clock(),
        )
        stored = await asyncio.to_thread(self._store.end_campaign, state)
        self._remember(stored)
        return stored

    def _remember(self, state: CampaignState) -> None:
        if self._config is not None:
            self._config.note(state)
