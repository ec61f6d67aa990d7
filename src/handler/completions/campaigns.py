"""A/B campaigns: which model a request is routed to, and which campaign and variant it counts for.

A campaign's variants are model names of the project, with weights. A request is in a campaign when
it names it (`ab_campaign`: the campaign's id or key, whatever its model says), or when it asks for
`model: "{project}"` while the project has an active campaign. Assignment hashes the campaign id
with the request's session id (else its user) onto the weights, so a conversation keeps its model;
a request with neither is assigned at random.

A campaign its stop rule completed (status `completed`, overlaid on the config from the store by
completions/campaign_state.py) takes no more requests into its counts: `model: "{project}"`, or
naming the campaign, is served by its winner (`then: winner`) or the project's default.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from dataclasses import dataclass

from handler.config.models import CampaignConfig, ProjectConfig
from handler.errors import InvalidRequest, NotFound


@dataclass(frozen=True)
class Routing:
    model_name: str | None  # None: the project's default model
    campaign: str | None = None  # the campaign's id
    campaign_key: str | None = None
    variant: str | None = None


def find_campaign(project: ProjectConfig, ref: str) -> tuple[str, CampaignConfig]:
    """A campaign of the project by key or by id; 404 EntityNotFound when it has none such."""
    if ref in project.campaigns:
        return ref, project.campaigns[ref]
    try:
        wanted = uuid.UUID(ref)
    except ValueError:
        wanted = None
    for key, campaign in project.campaigns.items():
        if campaign.id == wanted:
            return key, campaign
    raise NotFound(f"campaign {ref!r} does not exist in project {project.project!r}", param="ab_campaign")


def bucket(campaign_id: str, subject: str | None) -> float:
    """A point in [0, 1): fixed for a (campaign, subject) pair, random without a subject."""
    if subject is None:
        return random.random()
    digest = hashlib.sha256(f"{campaign_id}\x00{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(campaign_id: str, variants: dict[str, float], subject: str | None) -> str:
    """The variant whose share of the total weight covers the subject's point (names sorted, so the
    split does not depend on the order of the config file)."""
    names = sorted(name for name, weight in variants.items() if weight > 0)
    total = sum(variants[name] for name in names)
    point = bucket(campaign_id, subject) * total
    reached = 0.0
    for name in names:
        reached += variants[name]
        if point < reached:
            return name
    return names[-1]


def route(
    project: ProjectConfig,
    requested_model: str | None,
    ab_campaign: str | None,
    session_id: str | None,
    user: str | None,
) -> Routing:
    """The model a request is served by, and the campaign and variant it counts for (if any).

    `session_id` is the id the request sent (not one generated for it): only that ties requests.
    """
    if ab_campaign is None:
        if requested_model is not None:
            return Routing(requested_model)
        active = project.active_campaign()
        if active is None:
            decided = project.decided_campaign()
            return Routing(decided[1].winner if decided else None)
        key, campaign = active
    else:
        key, campaign = find_campaign(project, ab_campaign)
        if campaign.status == "completed":
            if requested_model is not None:
                return Routing(requested_model)
            return Routing(campaign.winner if campaign.then == "winner" else None)
        if campaign.status != "active":
            raise InvalidRequest(
                f"ab_campaign: campaign {key!r} is {campaign.status}, not active; it takes no requests",
                param="ab_campaign",
                code="campaign_not_active",
            )
        if requested_model is not None:
            if requested_model not in campaign.variants:
                raise InvalidRequest(
                    f"model: {requested_model!r} is not a variant of campaign {key!r} "
                    f"(variants: {', '.join(sorted(campaign.variants))}); send model "
                    f"{project.project!r} to be assigned one",
                    param="model",
                    code="model_not_in_campaign",
                )
            return Routing(requested_model, str(campaign.id), key, requested_model)
    campaign_id = str(campaign.id)
    subject = f"session:{session_id}" if session_id else f"user:{user}" if user else None
    variant = assign(campaign_id, campaign.variants, subject)
    return Routing(variant, campaign_id, key, variant)
