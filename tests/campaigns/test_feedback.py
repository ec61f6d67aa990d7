"""Feedback on completions and outcomes of sessions: accepted shapes, errors, and where they count."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient

from tests.campaigns.test_campaigns import SPRING, shop

CHAT = "/api/v1/chat/completions"


def complete(client: TestClient, **extra: Any) -> dict[str, Any]:
    body = {"model": "demo", "messages": [{"role": "user", "content": "hi"}], **extra}
    response = client.post(CHAT, json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_feedback_is_stored_with_its_completion(client: TestClient) -> None:
    cid = complete(client)["choices"][0]["completion_id"]
    posted = [
        {"completion_id": cid, "metric": "thumbs_up", "value": True, "reason": "clear", "user_id": "u-1"},
        {"completion_id": cid, "metric": "score", "value": 0.25, "details": {"rubric": "v2"}},
        {"completion_id": cid, "metric": "score", "value": 3, "details": "plain text details"},
    ]
    ids = []
    for body in posted:
        response = client.post("/api/v1/feedback", json=body)
        assert response.status_code == 200, response.text
        ids.append(response.json()["feedback_id"])
    listed = client.get(f"/api/v1/completions/{cid}/feedback").json()["feedback"]
    assert [f["feedback_id"] for f in listed] == ids
    assert [(f["metric"], f["value"]) for f in listed] == [
        ("thumbs_up", 1.0),
        ("score", 0.25),
        ("score", 3.0),
    ]
    assert listed[0]["reason"] == "clear" and listed[0]["user_id"] == "u-1" and listed[0]["project"] == "demo"
    assert listed[1]["details"] == {"rubric": "v2"}
    assert listed[0]["campaign"] is None  # demo has no campaign: stored, counted nowhere


def test_feedback_errors(client: TestClient) -> None:
    cid = complete(client)["choices"][0]["completion_id"]

    def post(**body: Any) -> tuple[int, dict[str, Any]]:
        response = client.post("/api/v1/feedback", json=body)
        return response.status_code, response.json().get("error", {})

    status, err = post(completion_id=str(uuid.uuid4()), metric="m", value=1)
    assert status == 404 and err["message"].startswith("EntityNotFound: completion")
    assert post(completion_id="nope", metric="m", value=1)[1]["param"] == "completion_id"
    assert post(completion_id=cid, metric="has space", value=1)[1]["param"] == "metric"
    assert post(completion_id=cid, metric="m", value="high")[1]["param"] == "value"
    assert post(completion_id=cid, metric="m")[1]["param"] == "value"
    assert client.get(f"/api/v1/completions/{uuid.uuid4()}/feedback").status_code == 404


def test_outcome_counts_toward_the_sessions_campaign_variant(client: TestClient) -> None:
    shop()
    session = str(uuid.uuid4())
    first = client.post(
        CHAT, json={"model": "shop", "session_id": session, "messages": [{"role": "user", "content": "hi"}]}
    ).json()
    variant = first["choices"][0]["model"].removeprefix("shop/")
    body = {
        "value": True,
        "project_id": "shop",
        "metric": "purchased",
        "session_id": session,
        "user_id": "buyer",
    }
    response = client.post("/api/v1/outcome", json=body)
    assert response.status_code == 200, response.text
    uuid.UUID(response.json()["outcome_id"])
    response = client.post("/api/v1/outcome", json={**body, "value": 0})
    assert response.status_code == 200

    data = client.get(f"/api/v1/ab_campaigns/{SPRING}/results").json()
    by_variant = {v["variant"]: v for v in data["variants"]}
    assert by_variant[variant]["outcomes"] == {"purchased": {"count": 2, "sum": 1.0, "mean": 0.5}}
    other = ({"small", "large"} - {variant}).pop()
    assert by_variant[other]["outcomes"] == {}

    # A session never stored is accepted (nothing to count it toward); an unknown project is a 404.
    response = client.post("/api/v1/outcome", json={**body, "session_id": str(uuid.uuid4())})
    assert response.status_code == 200
    response = client.post("/api/v1/outcome", json={**body, "project_id": "ghost"})
    assert response.status_code == 404 and response.json()["error"]["param"] == "project_id"
    response = client.post("/api/v1/outcome", json={**body, "session_id": "not-a-uuid"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "session_id"
