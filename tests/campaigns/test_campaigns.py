"""A/B campaigns: the split, sticky assignment, forcing a campaign, and feedback in the results."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import completion_items, put_project

CHAT = "/api/v1/chat/completions"
SPRING = "76d1fab3-214c-47ef-bb04-16270639bf89"
OLD = "0b9c7a8e-5d7c-4c55-9d0e-2f4c1c1c0001"


def shop(**campaigns: dict[str, Any]) -> str:
    put_project(
        {
            "project": "shop",
            "default_model": "base",
            "models": {
                "base": {"provider": "echo", "prefix": "base: "},
                "small": {"provider": "echo", "prefix": "small: "},
                "large": {"provider": "echo", "prefix": "large: "},
            },
            "campaigns": campaigns
            or {
                "spring": {"id": SPRING, "status": "active", "variants": {"small": 50, "large": 50}},
                "old": {"id": OLD, "status": "ended", "variants": {"small": 1, "base": 1}},
            },
        }
    )
    return "shop"


def ask(client: TestClient, **body: Any) -> Any:
    payload = {"model": "shop", "messages": [{"role": "user", "content": "hi"}], **body}
    response = client.post(CHAT, json=payload)
    assert response.status_code == 200, response.text
    return response.json()


async def complete_all(sessions: list[str], store_every: int) -> list[dict[str, Any]]:
    """The chat service in-process (what the route runs, without HTTP: 1,000 requests in ~1 s)."""
    from handler.completions.caller import Caller
    from handler.contract.chat import ChatRequest
    from handler.wiring import default_service

    service = default_service()
    out = []
    for i, session in enumerate(sessions):
        request = ChatRequest.model_validate(
            {
                "model": "shop",
                "messages": [{"role": "user", "content": "hi"}],
                "session_id": session,
                "store": i % store_every == 0,
            }
        )
        plan = await service.plan(request, time.perf_counter(), Caller.anyone())
        outcome = await service.complete(plan)
        out.append(outcome.response().model_dump())
    return out


def served(body: Any) -> str:
    return str(body["choices"][0]["model"]).removeprefix("shop/")


def test_thousand_requests_split_fifty_fifty_and_feedback_shows_in_results(client: TestClient) -> None:
    """1,000 requests split within a few points of 50/50; the results endpoint counts exactly the
    stored ones per variant, with the feedback posted on them. (Every tenth is stored: under moto a
    stored request costs ~20 ms and a feedback transaction copies the table.)"""
    shop()
    sessions = [str(uuid.UUID(int=i + 1)) for i in range(1000)]  # fixed ids: a reproducible split
    counts: Counter[str] = Counter()
    stored: dict[str, list[str]] = {"small": [], "large": []}
    for i, body in enumerate(asyncio.run(complete_all(sessions, store_every=10))):
        variant = served(body)
        choice = body["choices"][0]
        assert choice["message"]["content"] == f"{variant}: hi"  # served by the model it names
        counts[variant] += 1
        if i % 10 == 0:
            stored[variant].append(choice["completion_id"])
    assert set(counts) == {"small", "large"}
    assert 450 <= counts["small"] <= 550, counts

    # Feedback on 15 stored completions of each variant: `small` liked 2 in 3, `large` 1 in 3.
    for variant, liked in (("small", {0, 1}), ("large", {0})):
        for i, cid in enumerate(stored[variant][:15]):
            feedback = {"completion_id": cid, "metric": "thumbs_up", "value": i % 3 in liked}
            r = client.post("/api/v1/feedback", json=feedback)
            assert r.status_code == 200, r.text
            uuid.UUID(r.json()["feedback_id"])
    feedback = {
        "completion_id": stored["large"][0],
        "metric": "stars",
        "value": 4.5,
        "reason": "good",
        "user_id": "u",
    }
    assert client.post("/api/v1/feedback", json=feedback).status_code == 200

    expected = {variant: len(ids) for variant, ids in stored.items()}
    for url in (
        "/api/v1/projects/shop/ab_campaigns/spring/results",
        f"/api/v1/ab_campaigns/{SPRING}/results",
        "/api/v1/ab_campaigns/spring/results?project=shop",
    ):
        results = client.get(url)
        assert results.status_code == 200, results.text
        data = results.json()
        assert data["campaign"] == {
            "id": SPRING,
            "key": "spring",
            "project": "shop",
            "status": "active",
            "variants": {"small": 50, "large": 50},
        }
        assert data["requests"] == 100
        by_variant = {v["variant"]: v for v in data["variants"]}
        assert {v: by_variant[v]["requests"] for v in expected} == expected
        assert by_variant["small"]["feedback"]["thumbs_up"] == {
            "count": 15,
            "sum": 10.0,
            "mean": pytest.approx(2 / 3),
        }
        assert by_variant["large"]["feedback"]["thumbs_up"] == {
            "count": 15,
            "sum": 5.0,
            "mean": pytest.approx(1 / 3),
        }
        assert by_variant["large"]["feedback"]["stars"] == {"count": 1, "sum": 4.5, "mean": 4.5}
        assert "stars" not in by_variant["small"]["feedback"]
        assert by_variant["small"]["model"] == "shop/small"


def test_same_session_same_variant_else_same_user(client: TestClient) -> None:
    shop()
    for i in range(20):
        session = str(uuid.uuid4())
        # A different user on each request: the session decides.
        variants = {served(ask(client, session_id=session, user=f"u{i}-{j}", store=False)) for j in range(4)}
        assert len(variants) == 1
    seen: Counter[str] = Counter()
    for i in range(20):
        variants = {
            served(ask(client, user=f"user-{i}", store=False)) for _ in range(3)
        }  # no session: the user
        assert len(variants) == 1
        seen.update(variants)
    assert set(seen) == {"small", "large"}  # users really are split


def test_records_carry_campaign_and_variant_and_only_campaign_requests_count(client: TestClient) -> None:
    shop()
    body = ask(client)
    record = client.get(f"/api/v1/completions/{body['choices'][0]['completion_id']}").json()
    assert (record["campaign"], record["variant"]) == (SPRING, served(body))
    assert record["model"] == body["choices"][0]["model"]

    # An explicit model without ab_campaign is outside the campaign.
    body = ask(client, model="shop/small")
    record = client.get(f"/api/v1/completions/{body['choices'][0]['completion_id']}").json()
    assert (record["campaign"], record["variant"]) == (None, None)
    results = client.get("/api/v1/projects/shop/ab_campaigns/spring/results").json()
    assert results["requests"] == 1


def test_ab_campaign_forces_the_campaign_by_key_or_id(client: TestClient) -> None:
    shop(
        spring={"id": SPRING, "status": "active", "variants": {"small": 50, "large": 50}},
        summer={"id": OLD, "status": "paused", "variants": {"base": 1}},
    )
    # By id, with an explicit variant: that variant, counted in the campaign.
    body = ask(client, model="shop/large", ab_campaign=SPRING)
    assert served(body) == "large"
    record = client.get(f"/api/v1/completions/{body['choices'][0]['completion_id']}").json()
    assert (record["campaign"], record["variant"]) == (SPRING, "large")
    # By key, with `model: "{project}"`: assigned.
    assert served(ask(client, ab_campaign="spring")) in {"small", "large"}


def test_ab_campaign_errors_are_clear(client: TestClient) -> None:
    shop()

    def error(**body: Any) -> tuple[int, dict[str, Any]]:
        r = client.post(CHAT, json={"model": "shop", "messages": [{"role": "user", "content": "x"}], **body})
        return r.status_code, r.json()["error"]

    status, err = error(model="shop/base", ab_campaign="spring")
    assert status == 400 and err["param"] == "model" and err["code"] == "model_not_in_campaign"
    assert "'base' is not a variant of campaign 'spring'" in err["message"]

    status, err = error(ab_campaign="old")
    assert status == 400 and err["code"] == "campaign_not_active" and "'old' is ended" in err["message"]

    status, err = error(ab_campaign="winter")
    assert status == 404 and err["message"].startswith("EntityNotFound: campaign 'winter'")
    status, err = error(ab_campaign=str(uuid.uuid4()))
    assert status == 404 and err["param"] == "ab_campaign"
    assert completion_items() == []


def test_no_active_campaign_means_the_default_model(client: TestClient) -> None:
    shop(old={"id": OLD, "status": "paused", "variants": {"small": 1}})
    assert {served(ask(client, store=False)) for _ in range(5)} == {"base"}


def test_results_errors(client: TestClient) -> None:
    shop()
    r = client.get("/api/v1/ab_campaigns/spring/results")
    assert r.status_code == 400 and r.json()["error"]["param"] == "project"
    r = client.get(f"/api/v1/ab_campaigns/{SPRING}/results")  # nothing stored yet: its project is unknown
    assert r.status_code == 404 and r.json()["error"]["message"].startswith("EntityNotFound:")
    r = client.get("/api/v1/projects/shop/ab_campaigns/nope/results")
    assert r.status_code == 404
    r = client.get("/api/v1/projects/ghost/ab_campaigns/spring/results")
    assert r.status_code == 404 and "ghost" in r.json()["error"]["message"]
    # A campaign with no requests yet still lists its variants, at zero.
    data = client.get("/api/v1/projects/shop/ab_campaigns/spring/results").json()
    assert [(v["variant"], v["requests"], v["target_share"]) for v in data["variants"]] == [
        ("small", 0, 0.5),
        ("large", 0, 0.5),
    ]
    listing = client.get("/api/v1/projects/shop/ab_campaigns").json()
    assert [c["key"] for c in listing["ab_campaigns"]] == ["spring", "old"]
