"""One project never touches another (issue 11, A2 and A3).

A3: another project's completion, session, campaign, batch or model answers exactly like one that
does not exist: the test asks for project `lab`'s things with a key of `demo`, then deletes `lab`
(its config and everything stored) and asks its own key again; the answers must be the same bytes.
A2: sessions belong to a project: the same session id used by another project changes nothing that
the first project reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient

CHAT = "/api/v1/chat/completions"
SESSION = "5b0c3f6e-8a59-4a7e-9a43-2d3c1a6f0b21"
TONE = "5b0c6a52-2f6e-4d3b-9a59-0c1d2e3f4a5b"  # lab's campaign (tests/fixtures/config/lab.yaml)


@pytest.fixture
def keys_mode(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    from handler import wiring

    monkeypatch.setenv("AUTH_MODE", "keys")
    wiring.reset()
    yield aws
    wiring.reset()


def new_client() -> TestClient:
    from handler import wiring

    wiring.reset()  # nothing cached from before: config, keys
    return TestClient(wiring.create_app(), raise_server_exceptions=False)


def create_key(*projects: str) -> dict[str, str]:
    from handler.store.keys import DynamoKeyStore

    _, key = DynamoKeyStore("chat-gateway").create(projects)
    return {"Authorization": f"Bearer {key}"}


def chat(model: str, **extra: object) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hello"}], **extra}


def delete_project(env: dict[str, str], project: str) -> None:
    """The project gone: its config, and everything the table holds but the API keys."""
    ssm = boto3.client("ssm")
    path = f"{env['CONFIG_PREFIX'].rstrip('/')}/projects/{project}"
    names = [p["Name"] for p in ssm.get_parameters_by_path(Path=path, Recursive=True)["Parameters"]]
    for name in names:
        ssm.delete_parameter(Name=name)
    ddb = boto3.client("dynamodb")
    for item in ddb.scan(TableName=env["TABLE_NAME"])["Items"]:
        if item.get("type", {}).get("S") != "api_key":
            ddb.delete_item(TableName=env["TABLE_NAME"], Key={"pk": item["pk"], "sk": item["sk"]})


def test_another_projects_things_answer_byte_for_byte_like_missing_ones(keys_mode: dict[str, str]) -> None:
    env = keys_mode
    owner, stranger = create_key("lab"), create_key("demo")
    with new_client() as client:
        answer = client.post(CHAT, json=chat("lab", session_id=SESSION), headers=owner)
        assert answer.status_code == 200, answer.text
        cid = answer.json()["choices"][0]["completion_id"]
        boto3.client("s3").put_object(
            Bucket=env["BUCKET_NAME"],
            Key="batches/uploads/lab/lab.jsonl",
            Body=b'{"custom_id": "1", "body": {"model": "lab", "messages": [{"role": "user", "content": "x"}]}}\n',
        )
        batch = client.post(
            "/api/v1/batches",
            json={"project": "lab", "input_key": "batches/uploads/lab/lab.jsonl"},
            headers=owner,
        )
        assert batch.status_code == 202, batch.text
        requests: list[tuple[str, str, dict[str, Any] | None]] = [
            ("POST", CHAT, chat("lab")),
            ("POST", CHAT, chat("lab/concise")),
            ("POST", CHAT, chat("lab", ab_campaign="tone")),
            ("GET", f"/api/v1/completions/{cid}", None),
            ("GET", f"/api/v1/completions/{cid}/feedback", None),
            ("POST", "/api/v1/feedback", {"completion_id": cid, "metric": "thumbs", "value": True}),
            ("GET", f"/api/v1/sessions/{SESSION}", None),
            ("GET", f"/api/v1/sessions/{SESSION}?project=lab", None),
            (
                "POST",
                "/api/v1/outcome",
                {"project_id": "lab", "session_id": SESSION, "metric": "m", "value": 1},
            ),
            ("GET", "/api/v1/projects/lab/completions?label=bad-filter", None),
            ("GET", "/api/v1/projects/lab/ab_campaigns", None),
            ("GET", "/api/v1/projects/lab/ab_campaigns/tone/results", None),
            ("GET", f"/api/v1/ab_campaigns/{TONE}/results", None),
            ("GET", f"/api/v1/ab_campaigns/{TONE}/results?project=lab", None),
            ("GET", f"/api/v1/batches/{batch.json()['id']}", None),
            ("POST", "/api/v1/batches", {"project": "lab", "input_key": "batches/uploads/lab/lab.jsonl"}),
        ]
        # The owner sees every one of them (a campaign's results need a stored request: there is one).
        for method, path, body in requests:
            mine = client.request(method, path, json=body, headers=owner)
            assert mine.status_code < 400 or "bad-filter" in path, (method, path, mine.text)
        refused = [client.request(m, p, json=b, headers=stranger) for m, p, b in requests]

    delete_project(env, "lab")
    with new_client() as client:
        missing = [client.request(m, p, json=b, headers=owner) for m, p, b in requests]
    for (method, path, _), theirs, gone in zip(requests, refused, missing, strict=True):
        assert theirs.status_code == 404, (method, path, theirs.text)
        assert (theirs.status_code, theirs.content) == (gone.status_code, gone.content), (method, path)
        assert theirs.headers.get("content-type") == gone.headers.get("content-type")
        assert b"not allowed" not in theirs.content and b"hello" not in theirs.content


def test_another_projects_writes_to_a_session_id_change_nothing_the_first_reads(
    keys_mode: dict[str, str],
) -> None:
    a, b = create_key("lab"), create_key("demo")
    with new_client() as client:
        assert client.post(CHAT, json=chat("lab", session_id=SESSION), headers=a).status_code == 200
        before = client.get(f"/api/v1/sessions/{SESSION}", headers=a)
        assert before.status_code == 200 and len(before.json()["completions"]) == 1
        # Project demo picks the same id (ids are the clients'): its own session, not lab's.
        assert client.post(CHAT, json=chat("demo", session_id=SESSION), headers=b).status_code == 200
        after = client.get(f"/api/v1/sessions/{SESSION}", headers=a)
        assert (after.status_code, after.content) == (200, before.content)
        theirs = client.get(f"/api/v1/sessions/{SESSION}", headers=b).json()["completions"]
        assert [r["project"] for r in theirs] == ["demo"]

        # A key of both projects names the one it means; the ambiguity is a 400 naming `project`.
        both = create_key("lab", "demo")
        for headers in (both,):
            ambiguous = client.get(f"/api/v1/sessions/{SESSION}", headers=headers)
            assert ambiguous.status_code == 400, ambiguous.text
            assert ambiguous.json()["error"]["param"] == "project"
            named = client.get(f"/api/v1/sessions/{SESSION}?project=lab", headers=headers)
            assert (named.status_code, named.content) == (200, before.content)


def test_an_outcome_counts_toward_its_own_projects_session_only(keys_mode: dict[str, str]) -> None:
    a, b = create_key("lab"), create_key("demo")
    with new_client() as client:
        assert client.post(CHAT, json=chat("demo", session_id=SESSION), headers=b).status_code == 200
        assert client.post(CHAT, json=chat("lab", session_id=SESSION), headers=a).status_code == 200
        outcome = {"project_id": "lab", "session_id": SESSION, "metric": "sale", "value": 1}
        r = client.post("/api/v1/outcome", json=outcome, headers=a)
        assert r.status_code < 300, r.text
        results = client.get(f"/api/v1/ab_campaigns/{TONE}/results", headers=a).json()
        counted = sum(v["outcomes"].get("sale", {}).get("count", 0) for v in results["variants"])
        assert counted == 1


def test_the_dev_key_finds_a_sessions_project_without_a_scan_and_names_it_when_ambiguous(
    client: TestClient,
) -> None:
    """The dev key may use every project: the session's projects are read from the id's own
    partition (store/dynamodb.py), and `?project=` is needed only when several hold the id."""
    assert client.post(CHAT, json=chat("lab", session_id=SESSION)).status_code == 200
    alone = client.get(f"/api/v1/sessions/{SESSION}")
    assert alone.status_code == 200 and [r["project"] for r in alone.json()["completions"]] == ["lab"]
    assert client.post(CHAT, json=chat("demo", session_id=SESSION)).status_code == 200
    ambiguous = client.get(f"/api/v1/sessions/{SESSION}")
    assert ambiguous.status_code == 400 and ambiguous.json()["error"]["param"] == "project"
    assert "'demo', 'lab'" in ambiguous.json()["error"]["message"]
    assert client.get(f"/api/v1/sessions/{SESSION}?project=lab").content == alone.content
    demo = client.get(f"/api/v1/sessions/{SESSION}?project=demo").json()["completions"]
    assert [r["project"] for r in demo] == ["demo"]
    assert client.get(f"/api/v1/sessions/{SESSION}?project=ghost").status_code == 404
