"""The completion service: plan, get a model answering, collect the choices, store, respond.

It knows the config source, the store and the providers only through their ports; entrypoints
(HTTP, streaming, batch) call `plan()` then `complete()` or `stream()`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from handler.completions import engine
from handler.completions.planning import Plan, build_plan, split_model
from handler.config.models import ModelConfig
from handler.config.source import ConfigSource
from handler.contract.chat import ChatRequest, ChatResponse, Choice, ResponseMessage, Usage
from handler.errors import GatewayError, UpstreamError
from handler.observability import logger, record_completion
from handler.providers.base import (
    Event,
    Finish,
    Provider,
    TextDelta,
    ToolCallsDone,
    ToolRunsReport,
    UsageReport,
)
from handler.store.base import CompletionStore, StoreError
from handler.store.records import Attempt, CompletionRecord, RecordUsage, Status, ToolRun

ProviderFactory = Callable[[ModelConfig, Callable[[str], str]], Provider]


@dataclass
class ChoiceState:
    index: int
    completion_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    parts: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] | None = None
    tool_runs: list[ToolRun] = field(default_factory=list)
    finish_reason: str | None = None
    completion_tokens: int = 0

    @property
    def content(self) -> str:
        return "".join(self.parts)


@dataclass
class Outcome:
    """Everything known about a request's answer, final or not: the source of response and records."""

    plan: Plan
    model_name: str
    choices: list[ChoiceState]
    ttft_ms: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    status: Status = "completed"
    error: GatewayError | None = None
    attempts: list[Attempt] = field(default_factory=list)
    finished_at: float | None = None

    @classmethod
    def empty(cls, plan: Plan, model_name: str | None = None) -> Outcome:
        ids = plan.choice_ids or []
        choices = [ChoiceState(i, ids[i]) if i < len(ids) else ChoiceState(i) for i in range(plan.call.n)]
        return cls(plan, model_name or plan.model_name, choices)

    def apply(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            self.choices[event.index].parts.append(event.text)
        elif isinstance(event, ToolCallsDone):
            self.choices[event.index].tool_calls = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in event.calls
            ]
        elif isinstance(event, Finish):
            self.choices[event.index].finish_reason = event.reason
        elif isinstance(event, UsageReport):
            self.prompt_tokens += event.prompt_tokens
            self.completion_tokens += event.completion_tokens
        elif isinstance(event, ToolRunsReport):
            self.choices[event.index].tool_runs.extend(
                ToolRun(
                    id=r.id,
                    name=r.name,
                    arguments=r.arguments,
                    result=r.result,
                    error=r.error,
                    duration_ms=r.duration_ms,
                    round=r.round,
                )
                for r in event.runs
            )

    def usage(self) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            total_tokens=self.prompt_tokens + self.completion_tokens,
        )

    def response(self) -> ChatResponse:
        public = self.plan.public_model(self.model_name)
        return ChatResponse(
            id=self.plan.request_id,
            created=self.plan.created,
            model=public,
            session_id=self.plan.session_id,
            choices=[
                Choice(
                    index=c.index,
                    completion_id=c.completion_id,
                    model=public,
                    finish_reason=c.finish_reason,
                    message=ResponseMessage(
                        id=c.completion_id,
                        content=c.content,
                        tool_calls=c.tool_calls,  # type: ignore[arg-type]
                    ),
                )
                for c in self.choices
            ],
            usage=self.usage(),
        )

    def records(self) -> list[CompletionRecord]:
        plan = self.plan
        finished = self.finished_at or time.perf_counter()
        n = max(len(self.choices), 1)
        # Prompt tokens are shared by the choices; split completion tokens as counted per choice
        # when known, else evenly.
        per_choice = [c.completion_tokens for c in self.choices]
        if not any(per_choice):
            per_choice = [self.completion_tokens // n] * n
            if per_choice:
                per_choice[0] += self.completion_tokens - sum(per_choice)
        error = None
        if self.error is not None:
            error = {"message": self.error.message, "type": self.error.type, "code": self.error.code}
        return [
            CompletionRecord(
                completion_id=c.completion_id,
                request_id=plan.request_id,
                session_id=plan.session_id,
                project=plan.project_name,
                model=plan.public_model(self.model_name),
                provider=plan.project.models[self.model_name].provider,
                index=c.index,
                created=plan.started_at,
                status=self.status,
                messages=plan.messages,
                system_prompt=plan.call.system,
                params=plan.params,
                labels=plan.labels,
                tags=plan.tags,
                user=plan.user,
                content=c.content,
                tool_calls=c.tool_calls,
                finish_reason=c.finish_reason,
                usage=RecordUsage(
                    prompt_tokens=self.prompt_tokens,
                    completion_tokens=per_choice[c.index],
                    total_tokens=self.prompt_tokens + per_choice[c.index],
                ),
                ttft_ms=None if self.ttft_ms is None else round(self.ttft_ms, 3),
                duration_ms=round((finished - plan.received_at) * 1000, 3),
                campaign=plan.campaign,
                variant=plan.variant,
                parent_completion_ids=plan.parent_completion_ids,
                tool_runs=c.tool_runs,
                attempts=self.attempts,
                error=error,
            )
            for c in self.choices
        ]


def _deadlines(plan: Plan) -> dict[str, int | None]:
    """Each model's own max_ttft_ms window: the request's, else that model's, else the project's."""
    requested = plan.params.get("max_ttft_ms")
    out: dict[str, int | None] = {}
    for name, _ in plan.model_chain():
        own = plan.project.models[name].max_ttft_ms or plan.project.limits.max_ttft_ms
        out[name] = own if requested is None else requested or None
    out[plan.model_name] = plan.deadline_ms
    return out


def _log_completion(outcome: Outcome) -> None:
    """One log line per completion: ids, model, status, figures. Message content (the request's
    messages, the system prompt, the answers) only when `LOG_CONTENT` is on; secrets never."""
    from handler.settings import get_settings

    plan = outcome.plan
    extra: dict[str, Any] = {
        "request_id": plan.request_id,
        "session_id": plan.session_id,
        "project": plan.project_name,
        "model": outcome.model_name,
        "status": outcome.status,
        "completion_ids": [c.completion_id for c in outcome.choices],
        "ttft_ms": outcome.ttft_ms,
        "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.completion_tokens,
        "attempts": [f"{a.model}:{a.outcome}" for a in outcome.attempts],
    }
    if outcome.error is not None:
        extra["error"] = {"code": outcome.error.code, "message": outcome.error.message}
    if get_settings().log_content:
        extra["messages"] = plan.messages
        extra["system_prompt"] = plan.call.system
        extra["content"] = [c.content for c in outcome.choices]
    logger.info("completion", extra=extra)


class CompletionService:
    def __init__(
        self,
        config: ConfigSource,
        store: CompletionStore,
        providers: ProviderFactory,
        store_retry: Callable[[Sequence[CompletionRecord]], None] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self._providers = providers
        self._store_retry = store_retry  # queues records the store refused (store/retry.py)

    async def plan(
        self, req: ChatRequest, received_at: float, authorize: Callable[[str], None] | None = None
    ) -> Plan:
        """Resolve and validate a request. `authorize(project)` runs before the project is read."""
        project_name, _ = split_model(req.model)
        if authorize is not None:
            authorize(project_name)
        # A fresh cached config needs no thread; reading SSM does (it blocks).
        project = self.config.cached(project_name)
        if project is None:
            project = await asyncio.to_thread(self.config.project, project_name)
        return build_plan(req, project, received_at)

    def provider(self, plan: Plan, model_name: str) -> Provider:
        provider = self._providers(plan.project.models[model_name], self.config.secret)
        if not plan.server_tools:
            return provider
        from handler.completions.tool_runners import ToolRunner
        from handler.completions.tools import ToolLoop

        tools = {tool_id: plan.project.tools[tool_id] for tool_id in plan.server_tools}
        runner = ToolRunner(self.config.secret, plan.project_name)
        return ToolLoop(provider, tools, runner, plan.project.limits.max_tool_rounds)

    async def start(self, plan: Plan) -> engine.Started:
        """A model answering within the deadline; on failure the failure is stored, then raised."""
        try:
            return await engine.start(
                plan.call,
                plan.model_chain(),
                lambda name: self.provider(plan, name),
                received_at=plan.received_at,
                deadline_ms=_deadlines(plan),
            )
        except GatewayError as exc:
            outcome = Outcome.empty(plan)
            outcome.status = "ttft_exceeded" if exc.code == "ttft_exceeded" else "failed"
            outcome.error = exc
            outcome.attempts = exc.attempts
            await self.save(outcome)
            raise

    async def complete(self, plan: Plan) -> Outcome:
        """The whole answer at once (the model is still streamed, for the deadline)."""
        started = await self.start(plan)
        outcome = Outcome.empty(plan, started.model_name)
        outcome.ttft_ms, outcome.attempts = started.ttft_ms, started.attempts
        try:
            async for event in started.events():
                outcome.apply(event)
        except GatewayError as exc:
            outcome.status, outcome.error = "failed", exc
            await self.save(outcome)
            raise
        except Exception as exc:
            outcome.status = "failed"
            outcome.error = UpstreamError("the model provider failed mid-answer")
            await self.save(outcome)
            raise outcome.error from exc
        finally:
            await started.aclose()
        outcome.finished_at = time.perf_counter()
        await self.save(outcome)
        return outcome

    async def save(self, outcome: Outcome) -> None:
        """Write the final records, when the request stores. Never on the path to the first token."""
        plan = outcome.plan
        record_completion(
            project=plan.project_name,
            model=outcome.model_name,
            status=outcome.status,
            ttft_ms=outcome.ttft_ms,
            duration_ms=((outcome.finished_at or time.perf_counter()) - plan.received_at) * 1000,
            prompt_tokens=outcome.prompt_tokens,
            completion_tokens=outcome.completion_tokens,
        )
        _log_completion(outcome)
        if not plan.store:
            return
        records = outcome.records()
        try:
            await asyncio.to_thread(self.store.put_completions, records)
        except Exception as exc:  # StoreError, or anything else: the client gets its answer regardless
            await asyncio.to_thread(self.on_store_failure, records, exc)

    def on_store_failure(self, records: Sequence[CompletionRecord], exc: Exception) -> None:
        """Queue the records for StoreRetryFunction; only if that fails too are they lost (logged)."""
        ids = [r.completion_id for r in records]
        error = str(exc) if isinstance(exc, StoreError) else type(exc).__name__
        if self._store_retry is not None:
            try:
                self._store_retry(records)
            except Exception as queue_exc:
                logger.critical(
                    "completion records lost: not stored and not queued for a retry",
                    extra={"completion_ids": ids, "error": error, "queue_error": str(queue_exc)},
                )
                return
            logger.warning(
                "completion records queued for a retry", extra={"completion_ids": ids, "error": error}
            )
            return
        logger.error("completion records not stored", extra={"completion_ids": ids, "error": error})
