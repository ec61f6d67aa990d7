"""A project's A/B campaigns, and their results per variant: enough to pick a winner.

Results come from counters the store updates as completions, feedback and outcomes are stored (no
scan): per variant, the stored requests (and completions, failures), and per feedback or outcome
metric its count, sum and mean. Every variant of the campaign's config is listed (at zero before
its first request), then any variant that has counters but left the config since.

`statistics` adds, per metric (feedback metrics by name, session outcomes as `outcome:<metric>`)
and variant, n, mean and a 95 % interval, and against the control (`control:` in the config, else
the first variant) the difference, its interval, the p-value and the test (experiments/); the
preference win rates per pair of variants; the stop rule's state, and the recorded winner once a
campaign completed. The report page draws the same object.

A campaign named by its id alone is looked up by its counters, which know its project; one with
no stored request yet is unknown that way (the project must be named).
"""

from __future__ import annotations

import asyncio
import uuid

from pydantic import BaseModel

from handler.completions.access import open_project
from handler.completions.caller import Caller
from handler.completions.campaign_state import stop_rule, variant_metrics
from handler.completions.campaigns import find_campaign
from handler.config.models import CampaignConfig, ProjectConfig
from handler.config.source import ConfigSource
from handler.errors import InvalidRequest, NotFound
from handler.experiments.report import render_report
from handler.experiments.results import CampaignResults as Statistics
from handler.experiments.results import build_results
from handler.store.base import FeedbackStore
from handler.store.values import CampaignCounters, MetricStats, VariantStats


class CampaignSummary(BaseModel):
    """A campaign as its project's config has it."""

    id: str
    key: str
    project: str
    status: str  # active | paused | ended
    variants: dict[str, float]  # model name -> weight

    @classmethod
    def of(cls, project: ProjectConfig, key: str) -> CampaignSummary:
        campaign = project.campaigns[key]
        return cls(
            id=str(campaign.id),
            key=key,
            project=project.project,
            status=campaign.status,
            variants=dict(campaign.variants),
        )


class MetricSummary(BaseModel):
    count: int
    sum: float
    mean: float | None  # None while count is 0

    @classmethod
    def of(cls, stats: MetricStats) -> MetricSummary:
        return cls(count=stats.count, sum=stats.sum, mean=stats.mean)


class VariantResult(BaseModel):
    variant: str
    model: str  # `{project}/{variant}`, what a request names to be served by it
    weight: float  # 0 for a variant no longer in the config
    target_share: float  # its weight's share of the total weight
    requests: int
    share: float | None  # its share of the campaign's stored requests; None before the first
    completions: int
    failures: int
    feedback: dict[str, MetricSummary]
    outcomes: dict[str, MetricSummary]


class CampaignResults(BaseModel):
    campaign: CampaignSummary
    requests: int
    variants: list[VariantResult]
    statistics: Statistics | None = None  # tests, win rates, the stop rule and the winner


def statistics(project: ProjectConfig, key: str, counters: CampaignCounters) -> Statistics:
    """The campaign's statistics from its counters; status and winner are the recorded ones (a
    stop rule met in these numbers but not recorded yet shows in `stop`, not as the status)."""
    campaign: CampaignConfig = project.campaigns[key]
    present = [v.variant for v in counters.variants]
    names = [*campaign.variants, *(v for v in present if v not in campaign.variants)]
    rule = stop_rule(campaign)
    result = build_results(
        str(campaign.id),
        key,
        key,
        names,
        variant_metrics(names, counters.variants),
        control=campaign.control_variant,
        status=campaign.status,
        preferences={(p.a, p.b, p.metric): (p.wins, p.losses, p.ties) for p in counters.pairs},
        stop=rule,
        lower_is_better=[rule.metric] if rule is not None and not rule.higher_is_better else (),
    )
    state = counters.state
    completed = campaign.status == "completed" or (state is not None and state.status == "completed")
    winner = (state.winner if state is not None else None) or campaign.winner
    return result.model_copy(
        update={
            "status": "completed" if completed else campaign.status,
            "winner": winner if completed else None,
        }
    )


def _metrics(stats: dict[str, MetricStats]) -> dict[str, MetricSummary]:
    return {metric: MetricSummary.of(s) for metric, s in stats.items()}


def tally(
    project: ProjectConfig, key: str, counters: list[VariantStats], whole: CampaignCounters | None = None
) -> CampaignResults:
    """The results of campaign `key` from its variants' counters (the store's `campaign_stats`),
    with the statistics when the whole campaign partition (`campaign_counters`) is given."""
    campaign: CampaignConfig = project.campaigns[key]
    stats = {s.variant: s for s in counters}
    total_weight = sum(campaign.variants.values())
    names = [*campaign.variants, *(v for v in stats if v not in campaign.variants)]
    total_requests = sum(s.requests for s in stats.values())
    variants = []
    for name in names:
        s = stats.get(name)
        weight = campaign.variants.get(name, 0.0)
        requests = s.requests if s else 0
        variants.append(
            VariantResult(
                variant=name,
                model=f"{project.project}/{name}",
                weight=weight,
                target_share=weight / total_weight if total_weight else 0.0,
                requests=requests,
                share=requests / total_requests if total_requests else None,
                completions=s.completions if s else 0,
                failures=s.failures if s else 0,
                feedback=_metrics(s.feedback) if s else {},
                outcomes=_metrics(s.outcomes) if s else {},
            )
        )
    return CampaignResults(
        campaign=CampaignSummary.of(project, key),
        requests=total_requests,
        variants=variants,
        statistics=statistics(project, key, whole) if whole is not None else None,
    )


class CampaignResultsService:
    """Campaign listings and results for a caller (404 for unknown names, and the same 404 for
    another project's campaign)."""

    def __init__(self, store: FeedbackStore, config: ConfigSource) -> None:
        self._store = store
        self._config = config

    async def campaigns(self, caller: Caller, project: str) -> list[CampaignSummary]:
        """The project's campaigns, in the order of its config."""
        config = await open_project(self._config, caller, project, "project")
        return [CampaignSummary.of(config, key) for key in config.campaigns]

    async def results(self, caller: Caller, ref: str, project: str | None = None) -> CampaignResults:
        """Results of the campaign `ref` (its key or id) of `project`; without a project, `ref` must
        be the campaign's id and the campaign must have a stored request (400, else 404)."""
        if project is not None:
            config = await open_project(self._config, caller, project, "project")
            key, campaign = find_campaign(config, ref)
            whole = await self._counters(str(campaign.id))
            return tally(config, key, whole.variants, whole)
        try:
            campaign_id = str(uuid.UUID(ref))
        except ValueError:
            raise InvalidRequest(
                "project: a campaign named by key needs its project: add ?project=<project>, "
                "or name the campaign by its id",
                param="project",
            ) from None
        whole = await self._counters(campaign_id)
        owner = next((s.project for s in whole.variants if s.project), None)
        if owner is None or not caller.may_access(owner):  # another project's: as if never stored
            raise NotFound(
                f"campaign {campaign_id} has no stored requests (name its project with ?project= to see it)",
                param="id_or_key",
            )
        config = await open_project(self._config, caller, owner, "project")
        key, _ = find_campaign(config, campaign_id)
        return tally(config, key, whole.variants, whole)

    async def report(self, caller: Caller, ref: str, project: str | None = None) -> str:
        """The results page of the campaign (experiments/report.py): one self-contained HTML page."""
        results = await self.results(caller, ref, project)
        assert results.statistics is not None
        return render_report(results.statistics)

    async def _counters(self, campaign_id: str) -> CampaignCounters:
        return await asyncio.to_thread(self._store.campaign_counters, campaign_id)
