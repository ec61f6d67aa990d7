"""Feedback, outcomes and comparisons a client names (`feedback_id`, `outcome_id`,
`comparison_id`) count once however often they are sent (issue #16 item 5)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import put_project

CAMPAIGN = "7d3f0a52-0b8e-4f0c-9b16-000000000f16"


def test_the_same_feedback_outcome_and_comparison_count_once(client: TestClient) -> None:
    put_project(
        {
            "project": "shop",
            "default_model": "a",
            "models": {"a": {"provider": "echo"}, "b": {"provider": "echo"}},
            "campaigns": {"ab": {"id": CAMPAIGN, "variants": {"a": 1, "b": 1}}},
        }
    )
    session = str(uuid.uuid4())

    def chat(model: str) -> str:
        body = {
            "model": model,
            "ab_campaign": "ab",
            "session_id": session,
            "messages": [{"role": "user", "content": "x"}],
        }
        r = client.post("/api/v1/chat/completions", json=body)
        assert r.status_code == 200, r.text
        return str(r.json()["choices"][0]["completion_id"])

    a, b = chat("shop/a"), chat("shop/b")
    feedback_id, outcome_id, comparison_id = (str(uuid.uuid4()) for _ in range(3))
    for _ in range(2):
        r = client.post(
            "/api/v1/feedback",
            json={"completion_id": a, "metric": "stars", "value": 4, "feedback_id": feedback_id},
        )
        assert r.status_code == 200 and r.json() == {"feedback_id": feedback_id}
        r = client.post(
            "/api/v1/outcome",
            json={
                "project_id": "shop",
                "session_id": session,
                "metric": "bought",
                "value": True,
                "outcome_id": outcome_id,
            },
        )
        assert r.status_code == 200 and r.json() == {"outcome_id": outcome_id}
        r = client.post(
            "/api/v1/comparison",
            json={
                "project": "shop",
                "metric": "helpful",
                "preferred_completion": b,
                "other_completion": a,
                "comparison_id": comparison_id,
            },
        )
        assert r.status_code == 201 and r.json() == {"comparison_id": comparison_id}
    # Without an id each one is new.
    assert (
        client.post("/api/v1/feedback", json={"completion_id": a, "metric": "stars", "value": 2}).status_code
        == 200
    )

    data: dict[str, Any] = client.get("/api/v1/projects/shop/ab_campaigns/ab/results").json()
    by_variant = {v["variant"]: v for v in data["variants"]}
    assert by_variant["a"]["feedback"]["stars"] == {"count": 2, "sum": 6.0, "mean": 3.0}
    assert by_variant["a"]["outcomes"]["bought"]["count"] == 1
    assert by_variant["b"]["outcomes"]["bought"]["count"] == 1
    stats = data["statistics"]
    stars = next(m for m in stats["metrics"] if m["metric"] == "stars")
    assert [(v["variant"], v["n"], v["mean"]) for v in stars["variants"]] == [("a", 2, 3.0), ("b", 0, None)]
    assert {m["metric"] for m in stats["metrics"]} == {"stars", "outcome:bought"}
    (pair,) = stats["preferences"]
    assert (pair["variant_a"], pair["variant_b"], pair["wins"], pair["losses"], pair["n"]) == (
        "a",
        "b",
        0,
        1,
        1,
    )
    # The same feedback id, stored once: listed once.
    listed = client.get(f"/api/v1/completions/{a}/feedback").json()["feedback"]
    assert sorted(f["feedback_id"] == feedback_id for f in listed) == [False, True]
