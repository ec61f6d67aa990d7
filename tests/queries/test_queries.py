"""Listing a project's completions by label, tag, user and time: exact results, across pages,
newest first, read through GSI2 (never a scan)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import put_project

CHAT = "/api/v1/chat/completions"
LIST = "/api/v1/projects/library/completions"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.fixture
def calls(aws: dict[str, str]) -> Iterator[list[dict[str, Any]]]:
    """Every DynamoDB call the app makes: operation name and parameters."""
    from handler import aws as clients

    seen: list[dict[str, Any]] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        seen.append({"op": model.name, **params})

    client = clients.client("dynamodb")
    client.meta.events.register("provide-client-params.dynamodb.*", record)
    yield seen
    client.meta.events.unregister("provide-client-params.dynamodb.*", record)


def populate(client: TestClient) -> list[dict[str, Any]]:
    """14 stored completions (one request with n=2) with mixed users, labels and tags, plus one in
    another project with the same label; returns {id, user, labels, tags, created} oldest first."""
    put_project({"project": "library", "default_model": "echo", "models": {"echo": {"provider": "echo"}}})
    put_project({"project": "other", "default_model": "echo", "models": {"echo": {"provider": "echo"}}})
    made = []
    for i in range(13):
        body: dict[str, Any] = {
            "model": "library",
            "messages": [{"role": "user", "content": f"request {i}"}],
            "labels": {"team": "a" if i % 2 else "b", **({"env": "prod"} if i % 3 == 0 else {})},
            "tags": [t for t, on in (("x", i % 4 == 0), ("y", i % 5 == 0)) if on],
        }
        if i % 3 != 2:
            body["user"] = "alice" if i % 3 == 0 else "bob"
        if i == 6:
            body["n"] = 2
        response = client.post(CHAT, json=body)
        assert response.status_code == 200, response.text
        for choice in response.json()["choices"]:
            record = client.get(f"/api/v1/completions/{choice['completion_id']}").json()
            made.append(record)
    other = {
        "model": "other",
        "messages": [{"role": "user", "content": "x"}],
        "labels": {"team": "a"},
        "tags": ["x"],
    }
    assert client.post(CHAT, json=other).status_code == 200
    return made


def newest_first(records: list[dict[str, Any]]) -> list[str]:
    ordered = sorted(records, key=lambda r: (r["created"], r["index"]), reverse=True)
    return [r["completion_id"] for r in ordered]


def pages(client: TestClient, params: dict[str, Any]) -> tuple[list[str], int]:
    """Every completion id the listing returns, following cursors; and the number of pages."""
    ids: list[str] = []
    cursor = None
    count = 0
    while True:
        response = client.get(LIST, params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        body = response.json()
        count += 1
        assert len(body["completions"]) <= int(params.get("limit", 20))
        ids += [r["completion_id"] for r in body["completions"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, count
        assert count < 50


def test_label_tag_and_user_queries_return_exactly_the_matching_records_across_pages(
    client: TestClient, calls: list[dict[str, Any]]
) -> None:
    made = populate(client)
    calls.clear()
    cases: list[tuple[dict[str, Any], Any]] = [
        ({"label": "team=a"}, lambda r: r["labels"]["team"] == "a"),
        ({"label": "env=prod"}, lambda r: r["labels"].get("env") == "prod"),
        ({"tag": "x"}, lambda r: "x" in r["tags"]),
        ({"user": "alice"}, lambda r: r["user"] == "alice"),
        ({}, lambda r: True),
        # Combined filters: AND.
        (
            {"label": ["team=b", "env=prod"], "tag": "x"},
            lambda r: r["labels"] == {"team": "b", "env": "prod"} and "x" in r["tags"],
        ),
        ({"user": "bob", "label": "team=a"}, lambda r: r["user"] == "bob" and r["labels"]["team"] == "a"),
        ({"label": "team=zzz"}, lambda r: False),
    ]
    for params, wanted in cases:
        expected = newest_first([r for r in made if wanted(r)])
        got, count = pages(client, {**params, "limit": 2})
        assert got == expected, params
        if len(expected) > 2 and len(params) <= 1:
            assert count == (len(expected) + 1) // 2, params  # single filter: no empty trailing page

    # Read through the index only: queries on GSI2 and batch reads of the records, never a scan.
    ops = {c["op"] for c in calls}
    assert "Scan" not in ops
    assert {c.get("IndexName") for c in calls if c["op"] == "Query"} == {"GSI2"}
    assert ops <= {"Query", "BatchGetItem"}


def test_time_range_and_limit(client: TestClient) -> None:
    made = populate(client)
    since, until = made[3]["created"], made[9]["created"]
    got, _ = pages(client, {"since": since, "until": until, "limit": 4})
    assert got == newest_first(made[3:9])  # since inclusive, until exclusive
    iso = (EPOCH + timedelta(microseconds=int(since * 1_000_000))).isoformat()  # 2025-...+00:00
    got, _ = pages(client, {"since": iso, "label": "team=a"})
    assert got == newest_first([r for r in made if r["created"] >= since and r["labels"]["team"] == "a"])
    first = client.get(LIST, params={"limit": 1}).json()
    assert [r["completion_id"] for r in first["completions"]] == newest_first(made)[:1]
    assert first["completions"][0]["content"]  # whole records


def test_bad_parameters_are_400s_naming_them(client: TestClient) -> None:
    populate(client)

    def error(params: dict[str, Any], path: str = LIST) -> tuple[int, str | None]:
        response = client.get(path, params=params)
        return response.status_code, response.json()["error"]["param"]

    assert error({"label": "team"}) == (400, "label")
    assert error({"since": "yesterday"}) == (400, "since")
    assert error({"limit": 0})[0] == 400
    assert error({"limit": 1000})[0] == 400
    assert error({"cursor": "garbage"}) == (400, "cursor")
    cursor = client.get(LIST, params={"limit": 1, "tag": "x"}).json()["next_cursor"]
    assert error({"cursor": cursor, "tag": "y"}) == (400, "cursor")  # a cursor of another query
    assert error({}, "/api/v1/projects/ghost/completions") == (404, "project")
