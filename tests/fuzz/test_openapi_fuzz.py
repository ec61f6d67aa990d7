"""schemathesis against the app's own OpenAPI schema: no 5xx, and every response matches the schema.

The checks are those of `--checks all` that need no auth or resource-lifecycle setup: besides the
response ones, invalid data is refused (negative_data_rejection), a method a path does not serve
is a 405 with an `Allow` header listing exactly what it serves (unsupported_method,
allow_header_conformance; RFC 9110 section 15.5.6), and missing required headers are refused
(issue #11 D14). positive_data_acceptance is left out: generated valid data names projects that do
not exist (404), the one failure the issue accepts.

A bounded, derandomized run (a few examples per operation) so that it fits the suite's time budget
and fails the same way twice; `FUZZ_EXAMPLES=200 make test` digs deeper.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    allow_header_conformance,
    content_type_conformance,
    missing_required_header,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from handler.wiring import create_app
from tests.conftest import AUTH

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    missing_required_header,
    unsupported_method,
    allow_header_conformance,
]


# Built at import (schemathesis' lazy `from_fixture` does not run on pytest 9); the app reads no AWS
# until a request arrives, and every request below runs inside the `clean_aws` emulation.
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case: schemathesis.Case, clean_aws: dict[str, str]) -> None:
    case.call_and_validate(headers=AUTH, checks=CHECKS, excluded_checks=[])


def _answerable(case: schemathesis.Case, model: str) -> schemathesis.Case:
    """A generated chat request aimed at a model that exists, so the whole path runs (not only 404s)."""
    if isinstance(case.body, dict):
        body = {**case.body, "model": model}
        body.pop("max_ttft_ms", None)  # a random tiny deadline would only ever test the 504
        # Keep the generated text, in a shape the wire format's cross-field rules accept (the
        # schema can't say "content is required unless the role is assistant").
        texts = [m.get("content") for m in body.get("messages") or [] if isinstance(m, dict)]
        text = next((t for t in texts if isinstance(t, str) and t), "hi")
        body["messages"] = [{"role": "user", "content": text}]
        case.body = body
    return case


_CHAT = schema["/api/v1/chat/completions"]["POST"]


@given(
    case=st.builds(
        _answerable,
        _CHAT.as_strategy(),
        st.sampled_from(["demo", "demo/echo"]),
    )
)
@settings(
    max_examples=EXAMPLES * 2,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_chat_requests_to_a_real_model_conform(case: schemathesis.Case, clean_aws: dict[str, Any]) -> None:
    case.call_and_validate(headers=AUTH, checks=CHECKS, excluded_checks=[])


def test_unknown_fields_with_any_name_are_named_back_safely(module_client: Any) -> None:
    """Found by the fuzzer: a non-latin-1 (or newline) field name crashed the response header."""
    body = {"model": "demo", "messages": [{"role": "user", "content": "hi"}], "\U000ab6e2é": 1, "a\r\nb": 2}
    r = module_client.post("/api/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    assert r.headers["X-Ignored-Fields"] == "a\\r\\nb,\\U000ab6e2\\xe9"  # sorted
    r = module_client.post("/api/v1/chat/completions", json={**body, "stream": True})
    assert r.status_code == 200 and "\\U000ab6e2" in r.headers["X-Ignored-Fields"]


def test_a_method_a_path_does_not_serve_is_a_405_naming_every_method_it_does(module_client: Any) -> None:
    """RFC 9110 section 15.5.6: a 405 must carry `Allow`. /api/v1/batches has one route per method,
    and Starlette names only the first route's."""
    r = module_client.delete("/api/v1/batches")
    assert r.status_code == 405
    assert set(r.headers["Allow"].split(", ")) == {"GET", "HEAD", "POST"}
    assert r.json()["error"]["code"] == "method_not_allowed"


def test_path_ids_are_declared_as_uuids() -> None:
    paths = create_app().openapi()["paths"]
    for path, name in (
        ("/api/v1/completions/{completion_id}", "completion_id"),
        ("/api/v1/sessions/{session_id}", "session_id"),
        ("/api/v1/completions/{completion_id}/feedback", "completion_id"),
    ):
        (param,) = [p for p in paths[path]["get"]["parameters"] if p["name"] == name]
        assert param["schema"]["format"] == "uuid", path
