"""Whatever the request validator accepts is stored and read back equal (issue 11, B4).

A hypothesis property over the wire request (contract/chat.py): requests are drawn with any
Unicode (lone surrogates included), deep and wide free-form values (`response_format`,
`system_prompt_args`, message `metadata`), integers past 64 bits and non-finite floats. Each one the
validator and the planner accept becomes its records (the service's own `Outcome`), which go through
the real DynamoDB store (moto) and must read back equal, by id and by session. What they refuse
is refused with the field named (tests/api/test_storable.py holds the HTTP answers).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.unit

# Any code point, surrogates included (hypothesis leaves out category Cs unless told).
ANY_CHAR = st.characters(codec=None, exclude_categories=())
TEXT = st.text(ANY_CHAR, max_size=12)
NUMBER = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([2**63 - 1, -(2**63), 2**64 - 1, 2**64, -(2**63) - 1])
)
LEAF = st.none() | st.booleans() | NUMBER | TEXT


def nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for i in range(depth):
        value = {"k": value} if i % 2 else [value]
    return value


JSON = st.recursive(
    LEAF, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=12
)
DEEP = st.builds(nested, st.integers(min_value=0, max_value=300), LEAF)
FREE = JSON | DEEP

MESSAGE = st.fixed_dictionaries(
    {
        "role": st.just("user"),
        "content": TEXT
        | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": TEXT}), min_size=1, max_size=2),
    },
    optional={"name": TEXT, "metadata": FREE},
)
REQUEST = st.fixed_dictionaries(
    {"model": st.just("demo"), "messages": st.lists(MESSAGE, min_size=1, max_size=3)},
    optional={
        "labels": st.dictionaries(TEXT, TEXT, max_size=3),
        "tags": st.lists(TEXT, max_size=3),
        "user": st.text(ANY_CHAR, min_size=1, max_size=8),
        "response_format": st.builds(
            lambda extra: {"type": "json_object", **extra}, st.dictionaries(TEXT, FREE, max_size=2)
        ),
        "system_prompt_args": st.dictionaries(TEXT, FREE, max_size=3),
        "stop": TEXT,
    },
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=REQUEST)
def test_every_request_the_validator_accepts_is_stored_and_read_back_equal(
    store: Any, data: dict[str, Any]
) -> None:
    from pydantic import ValidationError

    from gatewayctl.config_files import load_file
    from handler.completions.planning import build_plan
    from handler.completions.service import Outcome
    from handler.contract.chat import ChatRequest
    from handler.errors import InvalidRequest
    from tests.conftest import TEST_CONFIG_DIR

    try:
        req = ChatRequest.model_validate(data)
        plan = build_plan(req, load_file(TEST_CONFIG_DIR / "demo.yaml"), 0.0)
    except (ValidationError, InvalidRequest):
        event("refused")
        return  # refused up front, with the field named: nothing to store
    event("stored")
    outcome = Outcome.empty(plan)
    outcome.choices[0].parts.append("answer")
    records = outcome.records()
    store.put_completions(records)  # must not raise: what was accepted is stored

    back = store.get_completion(records[0].completion_id)
    assert back == records[0]
    assert back.messages == plan.messages and back.labels == req.all_labels
    assert back.params.get("response_format") == req.response_format
    assert back.params.get("system_prompt_args") == req.system_prompt_args
    assert store.list_session("demo", plan.session_id) == records
