"""ToolLoop and ToolRunner without AWS or HTTP: round limits, client/server call mixes, Lambda errors."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from handler.completions.tool_runners import ToolRunner
from handler.completions.tools import ToolLoop
from handler.config.models import ToolConfig
from handler.providers.base import (
    Event,
    Finish,
    ModelCall,
    TextDelta,
    ToolCallOut,
    ToolCallsDone,
    ToolRunsReport,
    UsageReport,
)
from handler.values import ToolRun

LAMBDA_TOOL = ToolConfig.model_validate({"description": "d", "target": {"type": "lambda", "function": "fn"}})


class Scripted:
    """A model that plays one scripted turn per call and records what each call was asked."""

    supports_n = True

    def __init__(self, *turns: list[Event]) -> None:
        self.turns = list(turns)
        self.calls: list[ModelCall] = []

    async def stream(self, call: ModelCall) -> AsyncIterator[Event]:
        self.calls.append(call)
        turn = self.turns.pop(0) if len(self.turns) > 1 else self.turns[0]
        for event in turn:
            yield event


class FakeRunner(ToolRunner):
    def __init__(self) -> None:
        super().__init__(lambda name: "", "p")
        self.ran: list[str] = []

    async def run(self, tool_id: str, tool: ToolConfig, call: ToolCallOut, round_: int) -> ToolRun:
        self.ran.append(tool_id)
        return ToolRun(
            id=call.id, name=call.name, arguments=call.arguments, result=f"{tool_id} says hi", round=round_
        )


def calls(*names: str) -> list[Event]:
    return [
        ToolCallsDone(0, [ToolCallOut(f"id-{n}", n, "{}") for n in names]),
        Finish(0, "tool_calls"),
        UsageReport(5, 1),
    ]


def answer(text: str) -> list[Event]:
    return [TextDelta(0, text), Finish(0, "stop"), UsageReport(7, 2)]


async def collect(loop: ToolLoop, call: ModelCall) -> list[Event]:
    return [event async for event in loop.stream(call)]


def test_rounds_stop_at_max_tool_rounds_and_the_last_call_says_tool_choice_none() -> None:
    model = Scripted(calls("t"))  # a model that always calls the tool
    runner = FakeRunner()
    loop = ToolLoop(model, {"t": LAMBDA_TOOL}, runner, max_rounds=2)
    forced = {"type": "function", "function": {"name": "t"}}
    out = asyncio.run(
        collect(loop, ModelCall(messages=[{"role": "user", "content": "x"}], tool_choice=forced))
    )

    assert [c.tool_choice for c in model.calls] == [forced, None, "none"]  # forced once, then auto
    assert runner.ran == ["t", "t"]
    # Each round's conversation has the previous rounds' calls and results.
    assert [m["role"] for m in model.calls[2].messages] == ["user", "assistant", "tool", "assistant", "tool"]
    assert model.calls[1].messages[2] == {"role": "tool", "tool_call_id": "id-t", "content": "t says hi"}
    reports = [e for e in out if isinstance(e, ToolRunsReport) and e.runs]
    assert [r.runs[0].error for r in reports] == [
        None,
        None,
        "not run: the project's max_tool_rounds (2) was reached",
    ]
    assert isinstance(out[-2], Finish) and out[-2].reason == "stop"
    assert out[-1] == UsageReport(15, 3)  # summed over the three rounds, reported once
    assert not any(isinstance(e, ToolCallsDone) for e in out)  # server calls never reach the client


def test_a_client_function_call_ends_the_turn_and_server_calls_beside_it_are_not_run() -> None:
    model = Scripted(calls("server_tool", "client_fn"))
    runner = FakeRunner()
    loop = ToolLoop(model, {"server_tool": LAMBDA_TOOL}, runner, max_rounds=3)
    out = asyncio.run(collect(loop, ModelCall(messages=[{"role": "user", "content": "x"}])))
    assert runner.ran == []
    [done] = [e for e in out if isinstance(e, ToolCallsDone)]
    assert [c.name for c in done.calls] == ["client_fn"]
    assert [e.reason for e in out if isinstance(e, Finish)] == ["tool_calls"]
    assert len(model.calls) == 1


def test_text_before_a_tool_call_is_relayed_and_kept_in_the_conversation() -> None:
    model = Scripted([TextDelta(0, "Checking. "), *calls("t")], answer("Done."))
    loop = ToolLoop(model, {"t": LAMBDA_TOOL}, FakeRunner(), max_rounds=3)
    out = asyncio.run(collect(loop, ModelCall(messages=[{"role": "user", "content": "x"}])))
    assert "".join(e.text for e in out if isinstance(e, TextDelta)) == "Checking. Done."
    assistant = model.calls[1].messages[1]
    assert assistant["content"] == "Checking. "
    assert assistant["tool_calls"][0]["function"] == {"name": "t", "arguments": "{}"}
    # The model's tool call is reported before the tools run (its first output), then the runs.
    reports = [e for e in out if isinstance(e, ToolRunsReport)]
    assert [len(r.runs) for r in reports] == [0, 1]


def test_the_model_is_told_a_tool_failed_as_an_error_object() -> None:
    class Failing(FakeRunner):
        async def run(self, tool_id: str, tool: ToolConfig, call: ToolCallOut, round_: int) -> ToolRun:
            return ToolRun(id=call.id, name=call.name, arguments=call.arguments, error="boom", round=round_)

    model = Scripted(calls("t"), answer("ok"))
    asyncio.run(collect(ToolLoop(model, {"t": LAMBDA_TOOL}, Failing(), 3), ModelCall(messages=[])))
    assert model.calls[1].messages[-1]["content"] == '{"error":"boom"}'


class StubLambda:
    def __init__(self, response: dict[str, Any] | Exception) -> None:
        self.response = response
        self.payloads: list[Any] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.payloads.append(orjson.loads(kwargs["Payload"]))
        if isinstance(self.response, Exception):
            raise self.response
        return self.response


def run_lambda(monkeypatch: pytest.MonkeyPatch, stub: StubLambda, arguments: str = '{"q": 1}') -> ToolRun:
    from handler import aws

    monkeypatch.setattr(aws, "client", lambda service, region=None: stub)
    runner = ToolRunner(lambda name: "", "proj")
    return asyncio.run(runner.run("look", LAMBDA_TOOL, ToolCallOut("c1", "look", arguments), 1))


def test_lambda_function_error_is_the_runs_error(monkeypatch: pytest.MonkeyPatch) -> None:
    body = io.BytesIO(b'{"errorMessage": "KeyError: city", "errorType": "KeyError"}')
    stub = StubLambda({"StatusCode": 200, "FunctionError": "Unhandled", "Payload": body})
    run = run_lambda(monkeypatch, stub)
    assert run.error == "the tool's Lambda function failed: KeyError: city"
    assert stub.payloads == [{"tool": "look", "tool_call_id": "c1", "project": "proj", "arguments": {"q": 1}}]


def test_lambda_json_string_result_is_its_text_and_invoke_failures_are_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = run_lambda(monkeypatch, StubLambda({"StatusCode": 200, "Payload": io.BytesIO(b'"21 degrees"')}))
    assert (run.result, run.error) == ("21 degrees", None)

    from botocore.exceptions import ClientError

    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "Invoke")
    run = run_lambda(monkeypatch, StubLambda(denied))
    assert run.error == "the tool's Lambda function could not be invoked (AccessDeniedException)"


def test_arguments_that_are_not_a_json_object_are_refused_without_calling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stub = StubLambda({"StatusCode": 200, "Payload": io.BytesIO(b"{}")})
    assert run_lambda(monkeypatch, stub, "not json").error == "the tool call's arguments are not valid JSON"
    assert run_lambda(monkeypatch, stub, "[1]").error == "the tool call's arguments must be a JSON object"
    assert stub.payloads == []
    assert run_lambda(monkeypatch, stub, "").error is None  # no arguments at all is an empty object
    assert stub.payloads[-1]["arguments"] == {}


def test_unreadable_credential_is_an_error_result() -> None:
    tool = ToolConfig.model_validate(
        {"description": "d", "target": {"type": "http", "url": "http://127.0.0.1:9/", "auth_param": "/x"}}
    )

    def secrets(name: str) -> str:
        raise RuntimeError("ParameterNotFound")

    run = asyncio.run(ToolRunner(secrets, "p").run("t", tool, ToolCallOut("c", "t", "{}"), 1))
    assert run.error == "the tool's credential could not be read"
