"""`max_ttft_ms`: a model without a first content token in time is cancelled and its fallback tried.

The slow upstreams send their headers, a role-only chunk and an empty content chunk, then hold:
none of that is a first token. Whether the slow call was cancelled is the fake's own signal (it saw
the connection close before its response finished).
"""

from __future__ import annotations

import pytest

from tests.fakes.bedrock_server import BedrockReply, FakeBedrock
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.streaming.conftest import CHAT, Gateway, chat, data_lines, project, records

NOT_A_TOKEN = Reply(chunks=["", "too late"], hold=True)  # role chunk, empty content, then held


def test_slow_model_falls_back_invisibly(gateway: Gateway, openai_fake: FakeOpenAI) -> None:
    with FakeOpenAI(default=Reply(text="From the fallback")) as fallback:
        project(
            "ttft",
            {
                "slow": {
                    "provider": "openai",
                    "base_url": openai_fake.base_url,
                    "model": "slow",
                    "max_ttft_ms": 300,
                    "fallbacks": ["fast"],
                },
                "fast": {"provider": "openai", "base_url": fallback.base_url, "model": "fast"},
            },
        )
        openai_fake.enqueue(NOT_A_TOKEN)
        with gateway.client() as client, client.stream("POST", CHAT, json=chat("ttft/slow")) as response:
            assert response.status_code == 200
            ttft = float(response.headers["x-ttft-ms"])
            events = list(data_lines(response.iter_lines()))

        assert openai_fake.disconnected.wait(5), "the slow upstream call was not cancelled"
        assert openai_fake.first_token_sent.is_set()  # it had sent its empty chunk: not a token
        assert len(openai_fake.requests) == 1  # too slow means the fallback, not a retry
        assert len(fallback.requests) == 1
        chunks = events[:-1]
        assert "".join(c["choices"][0]["delta"]["content"] for c in chunks) == "From the fallback"
        assert {c["model"] for c in chunks} == {"ttft/fast"}
        assert ttft >= 300  # measured from the request's arrival, the slow model's wait included

        assert gateway.saves.wait(1) == ["completed"]
        (record,) = records()
        assert record["model"] == "ttft/fast" and record["content"] == "From the fallback"
        assert [(a["model"], a["outcome"]) for a in record["attempts"]] == [
            ("slow", "ttft_exceeded"),
            ("fast", "ok"),
        ]
        assert record["ttft_ms"] == pytest.approx(ttft, abs=0.06)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "non-stream"])
def test_no_fallback_in_time_is_a_504_and_both_calls_are_cancelled(
    gateway: Gateway, openai_fake: FakeOpenAI, bedrock_fake: FakeBedrock, stream: bool
) -> None:
    project(
        "late",
        {
            "slow": {
                "provider": "openai",
                "base_url": openai_fake.base_url,
                "model": "s",
                "fallbacks": ["br"],
            },
            "br": {"provider": "bedrock", "model_id": "anthropic.slow-v1:0"},
        },
    )
    openai_fake.enqueue(NOT_A_TOKEN)
    bedrock_fake.enqueue(BedrockReply(chunks=["", "too late"], hold=True))
    with gateway.client() as client:
        response = client.post(CHAT, json=chat("late", max_ttft_ms=250, stream=stream))

    assert response.status_code == 504
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == "ttft_exceeded" and error["type"] == "upstream_error"
    assert openai_fake.disconnected.wait(5) and bedrock_fake.disconnected.wait(5)
    assert gateway.saves.wait(1) == ["ttft_exceeded"]
    (record,) = records()
    assert record["status"] == "ttft_exceeded" and record["error"]["code"] == "ttft_exceeded"
    assert record["content"] == "" and record["ttft_ms"] is None
    assert [(a["model"], a["outcome"]) for a in record["attempts"]] == [
        ("slow", "ttft_exceeded"),
        ("br", "ttft_exceeded"),
    ]
