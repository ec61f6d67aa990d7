"""schemathesis against the app's own OpenAPI schema: no 5xx, and every response matches the schema.

A bounded, derandomized run (a few examples per operation) so that it fits the suite's time budget
and fails the same way twice; `FUZZ_EXAMPLES=200 make test` digs deeper.
"""

from __future__ import annotations

import os

import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from handler.api.app import create_app
from tests.conftest import AUTH

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


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
