"""The batch format without AWS: which lines are refused, how lines are packed into messages."""

from __future__ import annotations

import json

import pytest

from handler.batch.lines import LineChecker, Packer, batch_error_line, http_error_line, model_project
from handler.batch.worker import BadMessage, parse_reply_to
from tests.batch.conftest import chat_line


def test_checker_refuses_what_cannot_become_a_request() -> None:
    checker = LineChecker()
    lines = [
        chat_line("a", "hi"),
        b"{not json",
        b"[1, 2]",
        json.dumps({"method": "POST", "body": {}}),
        chat_line("a", "again"),
        json.dumps({"custom_id": "b", "method": "GET", "url": "/api/v1/chat/completions", "body": {}}),
        json.dumps({"custom_id": "c", "method": "POST", "url": "/v1/embeddings", "body": {}}),
        json.dumps({"custom_id": "d", "method": "POST", "url": "/v1/chat/completions", "body": "x"}),
        json.dumps({"custom_id": "e", "body": {"model": "demo"}}),  # method and url may be left out
    ]
    works = [
        checker.check(i, line if isinstance(line, bytes) else line.encode()) for i, line in enumerate(lines)
    ]
    codes = [w.error[0] if w.error else None for w in works]
    assert codes == [
        None,
        "invalid_json",
        "invalid_line",
        "missing_custom_id",
        "duplicate_custom_id",
        "invalid_method",
        "invalid_url",
        "invalid_body",
        None,
    ]
    assert works[4].custom_id == "a"  # the duplicate keeps its id: the output says which line it was
    assert works[0].body is not None and model_project(works[0].body) == "demo"


def test_packer_is_deterministic_and_bounded() -> None:
    works = [{"i": i, "body": {"x": "y" * (i * 50)}} for i in range(40)]

    def pack() -> list[list[int]]:
        packer = Packer(max_lines=5, max_bytes=2_000)
        groups = [g for g in (packer.add(w) for w in works) if g]
        last = packer.flush()
        return [[w["i"] for w in g] for g in [*groups, *([last] if last else [])]]

    first = pack()
    assert first == pack()
    assert [i for g in first for i in g] == list(range(40))
    assert all(len(g) <= 5 for g in first)
    assert len(first[-1]) == 1  # late lines are big: one per message


def test_error_lines_have_the_openai_shape() -> None:
    line = batch_error_line("b#1", "x", "invalid_json", "line is not valid JSON")
    assert line["response"] is None and line["error"]["code"] == "invalid_json"
    assert line["id"].startswith("batch_req_") and line["id"] == batch_error_line("b#1", "x", "c", "m")["id"]
    body = {
        "error": {"message": "m", "type": "invalid_request_error", "code": "invalid_request", "param": "n"}
    }
    http = http_error_line("b#2", "y", None, 400, body)
    assert http["response"] == {"status_code": 400, "request_id": None, "body": body}
    assert http["error"] == {"code": "invalid_request", "message": "m"}


def test_reply_destinations() -> None:
    assert parse_reply_to(None) is None
    assert parse_reply_to("https://sqs.us-east-1.amazonaws.com/1/q") == {
        "queue_url": "https://sqs.us-east-1.amazonaws.com/1/q"
    }
    assert parse_reply_to("chat-gateway-results") == {"event_bus": "chat-gateway-results"}
    assert parse_reply_to({"event_bus": "b", "detail_type": "t"}) == {"event_bus": "b", "detail_type": "t"}
    for bad in ({"queue_url": "q", "event_bus": "b"}, {"url": "x"}, {"queue_url": 3}, 7, ""):
        with pytest.raises(BadMessage):
            parse_reply_to(bad)
