"""Campaign counters stay exact under redelivery (issue #16 item 5, issue #11 B8): a store-retry
message delivered twice, or a batch replayed (its requests written again under the same request
ids), counts each request once."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import put_project
from tests.reliability.conftest import queued_messages, refuse_table_writes, sqs_event

CAMPAIGN = "7d3f0a52-0b8e-4f0c-9b16-000000000b08"


def shop() -> None:
    put_project(
        {
            "project": "shop",
            "default_model": "a",
            "models": {"a": {"provider": "echo"}, "b": {"provider": "echo"}},
            "campaigns": {"ab": {"id": CAMPAIGN, "variants": {"a": 1, "b": 1}}},
        }
    )


def counts(client: TestClient) -> dict[str, Any]:
    data = client.get("/api/v1/projects/shop/ab_campaigns/ab/results").json()
    return {v["variant"]: (v["requests"], v["completions"]) for v in data["variants"]} | {
        "all": data["requests"]
    }


def test_a_store_retry_message_delivered_twice_counts_once(
    module_client: TestClient, clean_aws: dict[str, str]
) -> None:
    from gatewayctl.local.context import LambdaContext
    from handler.entrypoints.store_retry import lambda_handler

    client = module_client
    shop()
    refusing = refuse_table_writes()
    body = {"model": "shop/a", "ab_campaign": "ab", "n": 2, "messages": [{"role": "user", "content": "x"}]}
    assert client.post("/api/v1/chat/completions", json=body).status_code == 200
    messages = queued_messages(clean_aws["STORE_RETRY_QUEUE_URL"])
    assert len(messages) == 1
    refusing.refuse = False
    # SQS delivers at least once: the same message in one batch and again in the next.
    assert lambda_handler(sqs_event(messages), LambdaContext())["batchItemFailures"] == []
    assert lambda_handler(sqs_event(messages), LambdaContext())["batchItemFailures"] == []
    assert counts(client) == {"a": (1, 2), "b": (0, 0), "all": 1}


def test_a_replayed_batch_counts_its_requests_once(
    module_client: TestClient, clean_aws: dict[str, str]
) -> None:
    """A batch run again writes its lines' records under the same request ids (batch/lines.py
    `request_id_for`), with new completion ids: the campaign counts each request once."""
    from handler.store.records import CompletionRecord
    from handler.wiring import default_store

    client = module_client
    shop()
    store = default_store()

    def run(suffix: str) -> None:
        store.put_completions(
            [
                CompletionRecord(
                    completion_id=f"00000000-0000-4000-8000-00000000{i:02d}{suffix}",
                    request_id=f"batch_req-{i}",
                    session_id="11111111-1111-4111-8111-111111111111",
                    project="shop",
                    model=f"shop/{variant}",
                    provider="echo",
                    created=1_800_000_000.0 + i,
                    campaign=CAMPAIGN,
                    variant=variant,
                )
                for i, variant in enumerate("abb")
            ]
        )

    run("01")
    run("02")  # replayed
    run("01")  # and the first run's records rewritten by a retry
    assert counts(client) == {"a": (1, 1), "b": (2, 2), "all": 3}
