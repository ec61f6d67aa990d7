"""The Mangum entrypoint on the three event shapes API Gateway and Lambda send, from events/."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gatewayctl.local.context import LambdaContext
from gatewayctl.local.invoke import handler_for, invoke
from tests.conftest import EVENTS_DIR, ROOT, TEST_CONFIG_DIR, completion_items


def load(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text())
    return event


def v2_event(rest: dict[str, Any], *, function_url: bool = False) -> dict[str, Any]:
    """The same request as an HTTP API (v2) or Function URL event (they share the v2 shape)."""
    domain = "abc.lambda-url.us-east-1.on.aws" if function_url else "abc.execute-api.us-east-1.amazonaws.com"
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": rest["path"],
        "rawQueryString": "",
        "headers": {k.lower(): v for k, v in rest["headers"].items()},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc",
            "domainName": domain,
            "domainPrefix": "abc",
            "http": {
                "method": rest["httpMethod"],
                "path": rest["path"],
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "test",
            },
            "requestId": "id",
            "routeKey": "$default",
            "stage": "$default",
            "time": "12/Mar/2020:19:03:58 +0000",
            "timeEpoch": 1583348638390,
        },
        "body": rest["body"],
        "isBase64Encoded": False,
    }


@pytest.mark.parametrize("shape", ["rest_v1", "http_api_v2", "function_url"])
def test_reference_example_event_is_answered_and_stored(aws: dict[str, str], shape: str) -> None:
    event = load("chat_completion.json")
    if shape != "rest_v1":
        event = v2_event(event, function_url=shape == "function_url")
    assert handler_for(event) == "handler.entrypoints.http.lambda_handler"
    response = invoke(event)
    assert response["statusCode"] == 200, response
    body = json.loads(response["body"])
    assert body["session_id"] == "6f1e3b1c-7f0a-4c4e-9d7b-2a7c0f6f9c11"
    assert body["choices"][0]["message"]["content"] == "Hello! What can this gateway do?"
    assert len(completion_items()) == 1


def test_lookup_event_reads_a_stored_completion(aws: dict[str, str]) -> None:
    from handler.entrypoints.http import lambda_handler

    created = json.loads(lambda_handler(load("chat_completion.json"), LambdaContext())["body"])
    cid = created["choices"][0]["completion_id"]
    lookup = load("get_completion.json")
    lookup["path"] = f"/api/v1/completions/{cid}"
    response = lambda_handler(lookup, LambdaContext())
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["completion_id"] == cid
    missing = lambda_handler(load("get_completion.json"), LambdaContext())
    assert missing["statusCode"] == 404


@pytest.mark.unit
def test_env_file_names_the_function_settings() -> None:
    from handler.settings import Settings

    env = load("env.json")
    assert env["ApiFunction"]["TABLE_NAME"] and env["ApiFunction"]["CONFIG_PREFIX"]
    for function, variables in env.items():
        unknown = {name for name in variables if name.lower() not in Settings.model_fields}
        if function == "ChatFunction":  # PORT is run.sh's: uvicorn's, where the Web Adapter calls it
            assert "${PORT" in (ROOT / "src" / "run.sh").read_text()
            unknown.discard("PORT")
        assert not {n for n in unknown if not n.startswith(("POWERTOOLS_", "AWS_"))}, function


EVENT_HANDLERS = {
    "http": "handler.entrypoints.http.lambda_handler",
    "batch": "handler.entrypoints.batch.lambda_handler",
    "store_retry": "handler.entrypoints.store_retry.lambda_handler",
}


@pytest.mark.unit
def test_every_event_file_goes_to_a_handler() -> None:
    """`make invoke EVENT=...` takes any events/*.json but env.json (the functions' environment)."""
    events = sorted(p for p in EVENTS_DIR.glob("*.json") if p.name != "env.json")
    assert events, f"no event files in {EVENTS_DIR}"
    routed = {p.name: handler_for(json.loads(p.read_text())) for p in events}
    assert set(routed.values()) == set(EVENT_HANDLERS.values()), routed
    assert routed["store_retry.json"] == EVENT_HANDLERS["store_retry"]
    assert routed["s3_put.json"] == routed["sqs_message.json"] == EVENT_HANDLERS["batch"]


def test_make_invoke_runs_api_and_batch_events_in_one_emulation() -> None:
    """`make invoke EVENT=...` as a user runs it: a fresh process, the embedded emulation."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    environ = {k: v for k, v in __import__("os").environ.items() if not k.startswith("AWS_")}
    result = subprocess.run(
        [sys.executable, "-m", "gatewayctl", "invoke", "events/chat_completion.json", "events/s3_put.json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**environ, "CONFIG_DIR": str(TEST_CONFIG_DIR)},  # the suite's projects, not config/
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert '"statusCode": 200' in result.stdout
    assert "s3://chat-gateway-local/batches/output/batch_example.jsonl" in result.stderr
    lines = [json.loads(x) for x in result.stdout.splitlines() if x.startswith('{"id":"batch_req_')]
    assert [line["custom_id"] for line in lines] == ["greeting-1", "greeting-2", "too-many"]


def test_the_readme_invoke_pair_reads_back_what_the_first_stored_and_prints_only_responses() -> None:
    """README: `make invoke EVENT="events/chat_completion.json events/get_session.json"`. The pair used
    to answer 404 (it asked for the message's lineage id), and EMF lines were mixed into stdout."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    environ = {k: v for k, v in __import__("os").environ.items() if not k.startswith("AWS_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gatewayctl",
            "invoke",
            "events/chat_completion.json",
            "events/get_session.json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**environ, "CONFIG_DIR": str(TEST_CONFIG_DIR), "POWERTOOLS_METRICS_DISABLED": "false"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    decoder = json.JSONDecoder()
    responses, text = [], result.stdout.strip()
    while text:  # stdout is nothing but the two pretty-printed responses
        value, end = decoder.raw_decode(text)
        responses.append(value)
        text = text[end:].strip()
    created, session = responses
    assert (created["statusCode"], session["statusCode"]) == (200, 200)
    cid = created["body"]["choices"][0]["completion_id"]
    assert cid in json.dumps(session["body"])
