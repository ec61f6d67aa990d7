"""Sessions list their completions in the order the requests came; message `completion_id`s link
a completion to earlier ones (unknown ids kept as given)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from fastapi.testclient import TestClient

CHAT = "/api/v1/chat/completions"


def test_session_lists_in_request_order_even_when_an_earlier_request_finishes_last(
    client: TestClient,
) -> None:
    from handler.completions.caller import Caller
    from handler.contract.chat import ChatRequest
    from handler.wiring import default_service

    session = str(uuid.uuid4())
    service = default_service()

    async def both() -> tuple[Any, Any]:
        def request(model: str, text: str) -> ChatRequest:
            body = {"model": model, "session_id": session, "messages": [{"role": "user", "content": text}]}
            return ChatRequest.model_validate(body)

        slow = await service.plan(request("demo/slow-echo", "first"), time.perf_counter(), Caller.anyone())
        fast = await service.plan(request("demo/echo", "second"), time.perf_counter(), Caller.anyone())
        finished: list[str] = []

        async def run(plan: Any, name: str) -> Any:
            outcome = await service.complete(plan)
            finished.append(name)
            return outcome

        results = await asyncio.gather(run(slow, "slow"), run(fast, "fast"))
        assert finished == ["fast", "slow"]  # the later request finished first
        return results

    asyncio.run(both())
    listed = client.get(f"/api/v1/sessions/{session}").json()["completions"]
    assert [r["content"] for r in listed] == ["first", "second"]


def test_message_completion_ids_are_recorded_as_lineage(client: TestClient) -> None:
    session = str(uuid.uuid4())
    first = client.post(
        CHAT, json={"model": "demo", "session_id": session, "messages": [{"role": "user", "content": "one"}]}
    ).json()
    first_id = first["choices"][0]["completion_id"]
    never_stored = str(uuid.uuid4())
    second = client.post(
        CHAT,
        json={
            "model": "demo",
            "session_id": session,
            "messages": [
                {"role": "user", "content": "one"},
                {"role": "assistant", "content": "one", "completion_id": first_id},
                {"role": "assistant", "content": "elsewhere", "completion_id": never_stored},
                {"role": "user", "content": "two"},
            ],
        },
    )
    assert second.status_code == 200, second.text
    listed = client.get(f"/api/v1/sessions/{session}").json()["completions"]
    assert [r["completion_id"] for r in listed] == [first_id, second.json()["choices"][0]["completion_id"]]
    assert listed[0]["parent_completion_ids"] == []
    assert listed[1]["parent_completion_ids"] == [first_id, never_stored]
    assert listed[1]["messages"][1]["content"] == "one"
