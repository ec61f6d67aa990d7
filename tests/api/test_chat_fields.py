"""Every request field of the reference does what it says (non-streaming, echo model, moto)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import put_project, table_items

URL = "/api/v1/chat/completions"


def chat(client: TestClient, **body: Any) -> Any:
    body.setdefault("model", "demo")
    body.setdefault("messages", [{"role": "user", "content": "Hello there, gateway"}])
    return client.post(URL, json=body)


def ok(client: TestClient, **body: Any) -> dict[str, Any]:
    response = chat(client, **body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def stored(client: TestClient, completion_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/completions/{completion_id}")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.fixture
def strict_project(aws: dict[str, str]) -> str:
    put_project(
        {
            "project": "strict",
            "default_model": "echo",
            "store": False,
            "limits": {"max_n": 4, "max_tokens": 100},
            "system_prompt": {"template": "You help {{ customer }} with {{ product }}."},
            "models": {"echo": {"provider": "echo"}, "other": {"provider": "echo", "prefix": "other: "}},
        }
    )
    return "strict"


def test_response_shape_matches_wire_format(client: TestClient) -> None:
    body = ok(client)
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert body["model"] == "demo/echo"
    uuid.UUID(body["session_id"])
    (choice,) = body["choices"]
    assert choice["index"] == 0
    assert choice["model"] == "demo/echo"
    assert choice["finish_reason"] == "stop"
    uuid.UUID(choice["completion_id"])
    assert choice["message"] == {
        "id": choice["completion_id"],
        "role": "assistant",
        "content": "Hello there, gateway",
    }
    assert (
        body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )
    assert body["usage"]["completion_tokens"] == 4  # Hello, there, ",", gateway


def test_model_project_uses_default_and_project_slash_model_picks(
    client: TestClient, strict_project: str
) -> None:
    assert (
        ok(client, model="strict", system_prompt_args={"customer": "a", "product": "b"})["model"]
        == "strict/echo"
    )
    body = ok(client, model="strict/other", system_prompt_args={"customer": "a", "product": "b"})
    assert body["choices"][0]["model"] == "strict/other"
    assert body["choices"][0]["message"]["content"] == "other: Hello there, gateway"


@pytest.mark.parametrize("model", ["nope", "nope/echo", "demo/nope"])
def test_unknown_project_or_model_is_404_entity_not_found(client: TestClient, model: str) -> None:
    response = chat(client, model=model)
    assert response.status_code == 404
    assert response.json()["error"]["message"].startswith("EntityNotFound: ")
    assert table_items() == []


@pytest.mark.parametrize("stop", [["there"], "there"])
def test_stop_as_list_or_bare_string_cuts_the_answer(client: TestClient, stop: Any) -> None:
    choice = ok(client, stop=stop)["choices"][0]
    assert choice["message"]["content"] == "Hello "
    assert choice["finish_reason"] == "stop"


def test_max_tokens_cuts_with_finish_reason_length(client: TestClient) -> None:
    body = ok(client, max_tokens=2)
    assert body["choices"][0]["message"]["content"] == "Hello there"
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 2


def test_max_completion_tokens_is_honoured_too(client: TestClient) -> None:
    assert ok(client, max_completion_tokens=1)["choices"][0]["message"]["content"] == "Hello"


def test_sampling_fields_are_recorded(client: TestClient) -> None:
    body = ok(client, temperature=0.2, top_p=0.5, seed=7, presence_penalty=0.5, frequency_penalty=-0.5)
    params = stored(client, body["choices"][0]["completion_id"])["params"]
    assert params | {"temperature": 0.2, "top_p": 0.5, "seed": 7} == params
    assert params["presence_penalty"] == 0.5 and params["frequency_penalty"] == -0.5


def test_n_gives_that_many_choices_each_with_its_own_completion(client: TestClient) -> None:
    body = ok(client, n=3)
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    ids = {c["completion_id"] for c in body["choices"]}
    assert len(ids) == 3
    for cid in ids:
        assert stored(client, cid)["content"] == "Hello there, gateway"


def test_n_zero_means_one_choice(client: TestClient) -> None:
    assert len(ok(client, n=0)["choices"]) == 1


def test_n_above_project_max_is_refused(client: TestClient, strict_project: str) -> None:
    response = chat(client, model="strict", n=5, system_prompt_args={"customer": "a", "product": "b"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "n"
    assert "4" in response.json()["error"]["message"]


def test_session_id_is_kept_or_generated_and_lists_in_order(client: TestClient) -> None:
    session = str(uuid.uuid4())
    first = ok(client, session_id=session)
    second = ok(client, session_id=session, messages=[{"role": "user", "content": "again"}])
    assert first["session_id"] == second["session_id"] == session
    listed = client.get(f"/api/v1/sessions/{session}").json()["completions"]
    assert [c["completion_id"] for c in listed] == [
        first["choices"][0]["completion_id"],
        second["choices"][0]["completion_id"],
    ]
    assert ok(client)["session_id"] != session


def test_user_uuid_and_opaque_user_are_recorded(client: TestClient) -> None:
    user = str(uuid.uuid4())
    body = ok(client, user=user)
    assert stored(client, body["choices"][0]["completion_id"])["user"] == user
    body = ok(client, user="alice@example.com")
    assert stored(client, body["choices"][0]["completion_id"])["user"] == "alice@example.com"


def test_labels_and_metadata_alias_are_merged_labels_winning(client: TestClient) -> None:
    body = ok(client, labels={"team": "a", "env": "prod"}, metadata={"team": "b", "source": "sdk"})
    record = stored(client, body["choices"][0]["completion_id"])
    assert record["labels"] == {"team": "a", "env": "prod", "source": "sdk"}


def test_tags_are_recorded(client: TestClient) -> None:
    body = ok(client, tags=["eval", "nightly"])
    assert stored(client, body["choices"][0]["completion_id"])["tags"] == ["eval", "nightly"]


def test_system_prompt_args_render_the_project_template(client: TestClient) -> None:
    body = ok(
        client,
        system_prompt_args={"persona": "a pirate"},
        messages=[{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "hi"}],
    )
    record = stored(client, body["choices"][0]["completion_id"])
    assert record["system_prompt"] == "You are a pirate.\n\nAnswer briefly."


def test_system_prompt_args_are_data_not_code(client: TestClient) -> None:
    body = ok(client, system_prompt_args={"persona": "{{ 7 * 7 }}"})
    assert stored(client, body["choices"][0]["completion_id"])["system_prompt"] == "You are {{ 7 * 7 }}."


def test_missing_template_argument_is_400_naming_it(client: TestClient, strict_project: str) -> None:
    response = chat(client, model="strict", system_prompt_args={"customer": "a"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert "product" in error["message"]
    assert error["param"] == "system_prompt_args.product"


def test_message_completion_id_is_recorded_as_lineage(client: TestClient) -> None:
    first = ok(client)
    parent = first["choices"][0]["completion_id"]
    never_stored = str(uuid.uuid4())
    body = ok(
        client,
        messages=[
            {"role": "user", "content": "Hello there, gateway"},
            {"role": "assistant", "content": "Hello there, gateway", "completion_id": parent},
            {"role": "assistant", "content": "x", "completion_id": never_stored},
            {"role": "user", "content": "and now?"},
        ],
    )
    record = stored(client, body["choices"][0]["completion_id"])
    assert record["parent_completion_ids"] == [parent, never_stored]


def test_message_parts_name_and_metadata_are_accepted(client: TestClient) -> None:
    body = ok(
        client,
        messages=[
            {
                "role": "user",
                "name": "ada",
                "metadata": {"any": ["thing"]},
                "content": [
                    {"type": "text", "text": "Describe "},
                    {"type": "image_url", "image_url": "data:image/png;base64,iVBORw0KGgo="},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    {"type": "text", "text": "this"},
                ],
            }
        ],
    )
    assert body["choices"][0]["message"]["content"] == "Describe this"


def usage_only() -> bool:
    """Nothing in the table but usage counters and their once-per-request markers (numbers only:
    a `store: false` request is counted in the usage report), none of them holding content."""
    items = table_items()
    kinds = {(i["pk"]["S"].split("#")[0], i["sk"]["S"].split("#")[0]) for i in items}
    return kinds == {("USAGE", "DAY"), ("REQUEST", "COUNTED")} and "Hello there" not in str(items)


def test_store_false_writes_no_record_and_default_stores(client: TestClient) -> None:
    ok(client, store=False)
    assert usage_only()
    body = ok(client)
    assert stored(client, body["choices"][0]["completion_id"])["status"] == "completed"


def test_project_store_default_false_is_respected_and_request_overrides(
    client: TestClient, strict_project: str
) -> None:
    args = {"customer": "a", "product": "b"}
    ok(client, model="strict", system_prompt_args=args)
    assert usage_only()
    body = ok(client, model="strict", system_prompt_args=args, store=True)
    assert stored(client, body["choices"][0]["completion_id"])["project"] == "strict"


def test_stream_options_accepted_on_non_streaming(client: TestClient) -> None:
    body = ok(client, stream=False, stream_options={})
    assert "usage" in body
    ok(client, stream_options={"include_usage": True})


def test_max_ttft_ms_falls_back_from_a_slow_model(client: TestClient) -> None:
    # slow-echo waits 300 ms before its first token and falls back to echo.
    ok(client)  # the project's config is cached now: the deadline is the model's alone
    body = ok(client, model="demo/slow-echo", max_ttft_ms=150)
    assert body["choices"][0]["model"] == "demo/echo"
    record = stored(client, body["choices"][0]["completion_id"])
    assert [a["outcome"] for a in record["attempts"]] == ["ttft_exceeded", "ok"]


def test_ttft_header_reports_the_measured_time(client: TestClient) -> None:
    response = chat(client)
    assert float(response.headers["x-ttft-ms"]) >= 0


def test_use_tools_and_tool_switches_are_validated(client: TestClient) -> None:
    assert chat(client, use_tools=False).status_code == 200
    response = chat(client, tools=[{"id": "no-such-tool", "enabled": True}])
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "tools"


def test_ab_campaign_is_accepted_as_id_or_key(client: TestClient) -> None:
    # Full behaviour is in tests/campaigns; an unknown campaign is named as not found.
    response = chat(client, ab_campaign="76d1fab3-214c-47ef-bb04-16270639bf89")
    assert response.status_code in (200, 404)
    if response.status_code == 404:
        assert response.json()["error"]["message"].startswith("EntityNotFound: ")


def test_unknown_fields_are_ignored_and_named(client: TestClient) -> None:
    response = chat(client, logprobs=True, service_tier="auto")
    assert response.status_code == 200
    assert response.headers["x-ignored-fields"] == "logprobs,service_tier"


def test_lookups_404_and_400(client: TestClient) -> None:
    missing = client.get(f"/api/v1/completions/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"].startswith("EntityNotFound: ")
    assert client.get("/api/v1/completions/not-a-uuid").status_code == 400
    assert client.get(f"/api/v1/sessions/{uuid.uuid4()}").status_code == 404


def test_curl_style_form_content_type_is_read_as_json(client: TestClient) -> None:
    raw = b'{"model": "demo", "messages": [{"role": "user", "content": "from curl -d"}]}'
    response = client.post(URL, content=raw, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "from curl -d"
