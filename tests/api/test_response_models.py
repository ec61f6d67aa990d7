"""Every route answers with a response model the OpenAPI document names, and the bodies are the
bytes they were before the routes had models (the record as stored, floats spelled as before)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from handler.store.records import CompletionRecord

SESSION = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
COMPLETION = "11111111-1111-4111-8111-111111111111"


def _document() -> dict[str, Any]:
    from handler.api.app import create_app

    def no_services() -> Any:
        raise AssertionError("the document needs no service")

    return create_app(no_services).openapi()


HTML_PAGES = {("get", "/api/v1/projects/{project}/ab_campaigns/{id_or_key}/report")}


@pytest.mark.unit
def test_every_operations_success_body_is_a_named_schema() -> None:
    document = _document()
    schemas = document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            success = next(r for status, r in operation["responses"].items() if status.startswith("2"))
            if (method, path) in HTML_PAGES:  # a page for people, not a body for clients
                assert set(success["content"]) == {"text/html"}, (method, path)
                continue
            if "application/json" not in success["content"]:  # a file's bytes (`files.content`)
                assert set(success["content"]) == {"application/jsonl"}, (method, path)
                continue
            ref = success["content"]["application/json"]["schema"]["$ref"]
            name = ref.rsplit("/", 1)[1]
            assert name in schemas, (method, path, name)
            assert schemas[name].get("properties"), (method, path, name)


@pytest.mark.unit
def test_listings_and_results_document_their_items() -> None:
    schemas = _document()["components"]["schemas"]
    assert schemas["SessionCompletions"]["properties"]["completions"]["items"] == {
        "$ref": "#/components/schemas/CompletionRecord"
    }
    assert schemas["CompletionFeedback"]["properties"]["feedback"]["items"] == {
        "$ref": "#/components/schemas/Feedback"
    }
    assert schemas["BatchList"]["properties"]["data"]["items"] == {"$ref": "#/components/schemas/BatchObject"}
    assert "share" in schemas["VariantResult"]["required"]  # present, null before the first request
    assert set(schemas["CompletionRecord"]["properties"]["tool_runs"]["items"].values()) == {
        "#/components/schemas/ToolRun"
    }


def test_a_stored_record_reads_back_as_the_same_bytes(client: TestClient) -> None:
    from handler.store.values import Feedback
    from handler.wiring import default_store

    record = CompletionRecord(
        completion_id=COMPLETION,
        request_id="chatcmpl-1",
        session_id=SESSION,
        project="demo",
        model="demo/echo",
        provider="echo",
        created=1733100000.123456,
        content="héllo ☃",
        duration_ms=1e-05,  # pydantic writes 0.00001 (json.dumps would write 1e-05): as before
        ttft_ms=1e16,
        tool_runs=[{"id": "t1", "name": "w", "arguments": "{}", "result": "r", "round": 1}],
    )
    default_store().put_completions([record])
    body = TypeAdapter(CompletionRecord).dump_json(record)

    response = client.get(f"/api/v1/completions/{COMPLETION}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == body
    assert b'"duration_ms":0.00001' in response.content

    session = client.get(f"/api/v1/sessions/{SESSION}")
    assert session.content == b'{"session_id":"%s","completions":[%s]}' % (SESSION.encode(), body)

    feedback = Feedback(
        feedback_id="f1", completion_id=COMPLETION, project="demo", metric="m", value=1e-05, created=1.5
    )
    default_store().put_feedback(feedback)
    listed = client.get(f"/api/v1/completions/{COMPLETION}/feedback")
    assert listed.content == b'{"completion_id":"%s","feedback":[%s]}' % (
        COMPLETION.encode(),
        feedback.model_dump_json().encode(),
    )
