"""Completion metrics are EMF documents CloudWatch can read, with project and model dimensions."""

from __future__ import annotations

import json

import pytest

from handler.observability import record_completion


def test_completion_metrics_are_one_emf_document(capsys: pytest.CaptureFixture[str]) -> None:
    record_completion("demo", "echo", "completed", 12.5, 40.0, prompt_tokens=5, completion_tokens=7)
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if "_aws" in x]
    directive = line["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "ChatGateway"
    assert {"project", "model", "status"} <= set(directive["Dimensions"][0])
    assert directive["Dimensions"][1] == ["service"]  # the stack-wide series the alarms read
    assert line["service"] == "chat-gateway"
    names = {m["Name"] for m in directive["Metrics"]}
    assert names == {"Completions", "Latency", "TimeToFirstToken", "PromptTokens", "CompletionTokens"}
    assert (line["project"], line["model"], line["TimeToFirstToken"], line["CompletionTokens"]) == (
        "demo",
        "echo",
        [12.5],
        [7.0],
    )
