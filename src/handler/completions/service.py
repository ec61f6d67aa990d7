"""The completion service: plan, get a model answering, collect the choices, store, respond.

It knows the config source, the store and the providers only through their ports. Every caller
(the JSON route, the SSE stream, batch lines) goes through one lifecycle:

```
plan = await service.plan(request, received_at, caller)   # everything a request can get wrong
answer = await service.start(plan)                        # a model's first token, or the error
async with answer:                                        #   (a failure is stored, then raised)
    async for event in answer: ...                        # the events, applied to the outcome
# leaving the block stores the record once: completed, failed or cancelled, with the partial text
```
`complete()` is that loop with nothing in its body; `api/streaming.py` turns the events into bytes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any

from handler.completions import engine
from handler.completions.budget import Budget
from handler.completions.caller import Caller
from handler.completions.planning import Overrides, Plan, build_plan, split_model
from handler.completions.quotas import QuotaGate, cost_usd, scope_of
from handler.config.models import ModelConfig
from handler.config.source import ConfigSource
from handler.contract.chat import (
    ChatRequest,
    ChatResponse,
    Choice,
    PromptTokensDetails,
    ResponseMessage,
    Usage,
)
from handler.errors import GatewayError, UpstreamError
from handler.observability import logger, record_completion
from handler.providers.base import (
    Event,
    Finish,
    Provider,
    ReasoningDelta,
    ReasoningDone,
    TextDelta,
    ToolCallsDone,
    ToolRunsReport,
    UsageReport,
)
from handler.providers.tokens import count_tokens, estimate_prompt_tokens
from handler.store.base import Store
from handler.store.errors import StoreError
from handler.store.records import Attempt, CompletionRecord, RecordUsage, Status, ToolRun

ProviderFactory = Callable[[ModelConfig, Callable[[str], str]], Provider]


@dataclass
class ChoiceState:
    index: int
    completion_id: str
    parts: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] | None = None
    tool_runs: list[ToolRun] = field(default_factory=list)
    finish_reason: str | None = None
    completion_tokens: int = 0
    reasoning_parts: list[str] = field(default_factory=list)
    thinking_blocks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def content(self) -> str:
        return "".join(self.parts)

    @property
    def reasoning_content(self) -> str | None:
        """The reasoning shown to the client, or None when the model did not reason."""
        if not self.reasoning_parts and not self.thinking_blocks:
            return None
        return "".join(self.reasoning_parts)


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
    cached_tokens: int | None = None  # prompt-cache reads, when the upstream reported them
    cache_write_tokens: int | None = None
    usage_estimated: bool = False

    @classmethod
    def empty(cls, plan: Plan, model_name: str | None = None) -> Outcome:
        choices = [ChoiceState(i, cid) for i, cid in enumerate(plan.choice_ids)]
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
            self.usage_estimated = self.usage_estimated or event.estimated
            if event.cached_tokens is not None:
                self.cached_tokens = (self.cached_tokens or 0) + event.cached_tokens
            if event.cache_write_tokens is not None:
                self.cache_write_tokens = (self.cache_write_tokens or 0) + event.cache_write_tokens
        elif isinstance(event, ReasoningDelta):
            self.choices[event.index].reasoning_parts.append(event.text)
        elif isinstance(event, ReasoningDone):
            self.choices[event.index].thinking_blocks.append(event.block)
        elif isinstance(event, ToolRunsReport):
            self.choices[event.index].tool_runs.extend(event.runs)

    def usage(self) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            total_tokens=self.prompt_tokens + self.completion_tokens,
            prompt_tokens_details=(
                None if self.cached_tokens is None else PromptTokensDetails(cached_tokens=self.cached_tokens)
            ),
        )

    def cost(self, choice_tokens: int | None = None, first: bool = True) -> tuple[float | None, str | None]:
        """(USD, None), or (None, why not): the whole answer's, or one choice's share (its
        `choice_tokens`; the shared prompt is charged to the `first` choice)."""
        prices = self.plan.project.models[self.model_name].prices
        if prices is None:
            return None, f"no prices configured for model {self.model_name!r}"
        completion = self.completion_tokens if choice_tokens is None else choice_tokens
        prompt, read, write = (self.prompt_tokens, self.cached_tokens or 0, self.cache_write_tokens or 0)
        if not first:
            prompt = read = write = 0
        return cost_usd(prices, prompt, completion, read, write), None

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
                        reasoning_content=c.reasoning_content,
                        thinking_blocks=c.thinking_blocks or None,
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
                    cached_tokens=self.cached_tokens,
                    cache_write_tokens=self.cache_write_tokens,
                ),
                usage_estimated=self.usage_estimated,
                reasoning_content=c.reasoning_content,
                thinking_blocks=c.thinking_blocks or None,
                ttft_ms=None if self.ttft_ms is None else round(self.ttft_ms, 3),
                duration_ms=round((finished - plan.received_at) * 1000, 3),
                campaign=plan.campaign,
                variant=plan.variant,
                parent_completion_ids=plan.parent_completion_ids,
                tool_runs=c.tool_runs,
                attempts=self.attempts,
                error=error,
                key_id=plan.key_id,
                cost_usd=self.cost(per_choice[c.index], c.index == 0)[0],
                cost_note=self.cost(per_choice[c.index], c.index == 0)[1],
            )
            for c in self.choices
        ]


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


class Answer:
    """One request's answer, from its first token to its stored record.

    Iterating it yields the model's events, each already applied to `outcome`; a choice the model
    ended without a finish gets `Finish(index, "stop")`, and usage the model never reported is
    estimated, before the iteration ends. Leaving `async with` stores the record once: completed,
    failed (a `GatewayError`, or any other error, which becomes an `UpstreamError`) or cancelled (the
    client left), closing the upstream call first.
    """

    def __init__(self, service: CompletionService, plan: Plan, started: engine.Started) -> None:
        self.service = service
        self.plan = plan
        self.started = started
        outcome = Outcome.empty(plan, started.model_name)
        outcome.ttft_ms, outcome.attempts = started.ttft_ms, started.attempts
        self.outcome = outcome
        self._usage_seen = False
        self._closed = False
        self._client_left = False
        self._budget = Budget(plan.call.max_tokens, len(outcome.choices), service.max_answer_bytes)
        self._was_cut = False  # the gateway cut a choice: its usage is what the client got

    @property
    def model_name(self) -> str:
        return self.started.model_name

    async def __aiter__(self) -> AsyncIterator[Event]:
        outcome = self.outcome
        choices = outcome.choices
        finished = [False] * len(choices)
        budget = self._budget
        async for event in self.started.events():
            if type(event) is TextDelta:  # the hot path: most events are tokens
                if event.text:
                    if budget.fits(event.index, event.text):
                        choices[event.index].parts.append(event.text)
                        yield event
                        continue
                    for cut in self._cut(event, finished):
                        yield cut
                    if budget.exhausted:
                        break  # nothing more is read: leaving the block closes the upstream
                continue
            if budget.cut[getattr(event, "index", 0)] and not isinstance(event, UsageReport):
                continue  # a choice that was cut takes nothing more
            if isinstance(event, Finish):
                if finished[event.index]:
                    continue
                finished[event.index] = True
            elif isinstance(event, UsageReport):
                self._usage_seen = True
            elif isinstance(event, ToolCallsDone):
                size = sum(len(c.arguments) + len(c.name) for c in event.calls)
                if not budget.add_bytes(size, choices):
                    for cut in self._finish_cut(finished):
                        yield cut
                    break
            outcome.apply(event)
            yield event
        self.settle_usage()
        for index, done in enumerate(finished):
            if not done:  # the provider ended without a finish: the choice still ends
                event = Finish(index=index, reason="stop")
                outcome.apply(event)
                yield event

    def _cut(self, delta: TextDelta, finished: list[bool]) -> list[Event]:
        """A delta that may not fit the budget (budget.py): the part that fits, and a `length`
        finish for every choice the budget ran out for."""
        choices = self.outcome.choices
        keep = self._budget.take(delta.index, delta.text, choices)
        if keep is None:  # it fits after all
            choices[delta.index].parts.append(delta.text)
            return [delta]
        events: list[Event] = []
        if keep:
            choices[delta.index].parts.append(keep)
            events.append(TextDelta(index=delta.index, text=keep))
        return events + self._finish_cut(finished)

    def _finish_cut(self, finished: list[bool]) -> list[Event]:
        events: list[Event] = []
        for index, cut in enumerate(self._budget.cut):
            if cut and not finished[index]:
                finished[index] = True
                self._was_cut = True
                event = Finish(index=index, reason="length")
                self.outcome.apply(event)
                events.append(event)
        return events

    def fail(self, exc: GatewayError) -> None:
        self.outcome.status, self.outcome.error = "failed", exc

    def client_left(self) -> None:
        """Nobody reads the answer any more (a send failed): it ends as cancelled."""
        self._client_left = True

    def settle_usage(self) -> None:
        """Usage is always stored: estimated when the model never reported it. An answer the
        gateway cut counts what the client got, not what the upstream went on generating."""
        outcome = self.outcome
        if self._was_cut:
            outcome.completion_tokens = sum(count_tokens(c.content) for c in outcome.choices)
        if self._usage_seen:
            return
        outcome.prompt_tokens = estimate_prompt_tokens(self.plan.call)
        outcome.completion_tokens = sum(count_tokens(c.content) for c in outcome.choices)
        outcome.usage_estimated = True

    async def close(self) -> None:
        """Close the upstream call (stop paying for it), then store the final record. Once."""
        if self._closed:
            return
        self._closed = True
        self.outcome.finished_at = time.perf_counter()
        # Shielded: a second cancellation (server shutdown) must not lose the record.
        await asyncio.shield(self._finish())

    async def _finish(self) -> None:
        await self.started.aclose()
        self.settle_usage()
        await self.service.save(self.outcome)

    async def __aenter__(self) -> Answer:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            pass
        elif self._client_left or not isinstance(exc, Exception):  # CancelledError: the client left
            if not self._closed:
                self.outcome.status = "cancelled"
        elif isinstance(exc, GatewayError):
            self.fail(exc)
        else:
            error = UpstreamError("the model provider failed mid-answer")
            self.fail(error)
            await self.close()
            raise error from exc
        await self.close()


class CompletionService:
    def __init__(
        self,
        config: ConfigSource,
        store: Store,
        providers: ProviderFactory,
        store_retry: Callable[[Sequence[CompletionRecord]], None] | None = None,
        quotas: QuotaGate | None = None,
    ) -> None:
        self.quotas = quotas  # None: no limits are enforced (nor counted)
        self.config = config
        self.store = store
        self._providers = providers
        self._store_retry = store_retry  # queues records the store refused (store/retry.py)
        from handler.settings import get_settings

        settings = get_settings()
        self.max_answer_bytes = settings.max_answer_bytes
        # No answer outlives the function (completions/deadlines.py).
        self.answer_within_s = max(settings.function_timeout_s - settings.deadline_margin_s, 1.0)

    async def plan(
        self,
        req: ChatRequest,
        received_at: float,
        caller: Caller,
        overrides: Overrides | None = None,
    ) -> Plan:
        """Resolve and validate a request. The caller's access is checked before the project is read."""
        project_name, _ = split_model(req.model)
        caller.require(project_name)
        # A fresh cached config needs no thread; reading SSM does (it blocks).
        project = self.config.cached(project_name)
        if project is None:
            project = await asyncio.to_thread(self.config.project, project_name)
        plan = build_plan(req, project, received_at, overrides)
        return await self.admit(plan, caller)

    async def admit(self, plan: Plan, caller: Caller) -> Plan:
        """Count the request against the key's and the project's quotas (one round trip, only when
        either has limits), or raise QuotaExceeded (429) before any model is called."""
        if self.quotas is None:
            return replace(plan, key_id=caller.key_id)
        scopes = [scope_of("project", plan.project_name, plan.project.limits)]
        if caller.key_id is not None:
            scopes.insert(0, scope_of("key", caller.key_id, caller.key_quotas))
        if QuotaGate.limited(scopes):
            try:
                await asyncio.to_thread(self.quotas.admit, scopes)
            except StoreError as exc:  # counters unreachable: serve (availability first), say so
                logger.error("quota check failed: request admitted unchecked", extra={"error": str(exc)})
        return replace(plan, key_id=caller.key_id, quota_scopes=tuple(s for s in scopes if s.limits))

    def provider(self, plan: Plan, model_name: str) -> Provider:
        provider = self._providers(plan.project.models[model_name], self.config.secret)
        if not plan.server_tools:
            return provider
        from handler.completions.tool_runners import ToolRunner
        from handler.completions.tools import ToolLoop

        tools = {tool_id: plan.project.tools[tool_id] for tool_id in plan.server_tools}
        runner = ToolRunner(self.config.secret, plan.project_name)
        return ToolLoop(provider, tools, runner, plan.project.limits.max_tool_rounds)

    async def start(self, plan: Plan, clock: engine.Clock = engine.REAL_CLOCK) -> Answer:
        """A model answering within the deadline; on failure (or the client leaving before the first
        token) the outcome is stored, then the error raised."""
        try:
            started = await engine.start(
                plan.call,
                plan.chain,
                lambda name: self.provider(plan, name),
                received_at=plan.received_at,
                clock=clock,
                until=plan.received_at + self.answer_within_s if clock is engine.REAL_CLOCK else None,
            )
        except GatewayError as exc:
            outcome = Outcome.empty(plan)
            outcome.status = "ttft_exceeded" if exc.code == "ttft_exceeded" else "failed"
            outcome.error = exc
            outcome.attempts = exc.attempts
            await self.save(outcome)
            raise
        except asyncio.CancelledError:
            outcome = Outcome.empty(plan)
            outcome.status = "cancelled"
            outcome.finished_at = time.perf_counter()
            await asyncio.shield(self.save(outcome))
            raise
        return Answer(self, plan, started)

    async def complete(self, plan: Plan) -> Outcome:
        """The whole answer at once (the model is still streamed, for the deadline)."""
        async with await self.start(plan) as answer:
            async for _ in answer:
                pass
        return answer.outcome

    async def save(self, outcome: Outcome) -> None:
        """Write the final records, when the request stores; else count its usage alone (numbers,
        no content), which a failure never turns into an error. Never on the path to the first token."""
        plan = outcome.plan
        record_completion(
            project=plan.project_name,
            model=outcome.model_name,
            status=outcome.status,
            ttft_ms=outcome.ttft_ms,
            duration_ms=((outcome.finished_at or time.perf_counter()) - plan.received_at) * 1000,
            prompt_tokens=outcome.prompt_tokens,
            completion_tokens=outcome.completion_tokens,
            cost_usd=outcome.cost()[0],
        )
        _log_completion(outcome)
        if plan.quota_scopes and self.quotas is not None:
            await asyncio.to_thread(self.charge, outcome)
        if not plan.store:
            await asyncio.to_thread(self.count_usage, outcome)
            return
        records = outcome.records()
        try:
            await asyncio.to_thread(self.store.put_completions, records)
        except Exception as exc:  # StoreError, or anything else: the client gets its answer regardless
            await asyncio.to_thread(self.on_store_failure, records, exc)

    def charge(self, outcome: Outcome) -> None:
        """Charge the answer's tokens and spend to the key's and the project's limited windows."""
        assert self.quotas is not None
        tokens = outcome.prompt_tokens + outcome.completion_tokens
        try:
            self.quotas.charge(outcome.plan.quota_scopes, tokens, outcome.cost()[0] or 0.0)
        except Exception as exc:  # the client gets its answer; the quota under-counts (logged)
            logger.error(
                "quota counters not charged",
                extra={"request_id": outcome.plan.request_id, "tokens": tokens, "error": str(exc)},
            )

    def count_usage(self, outcome: Outcome) -> None:
        """Add an unstored request's usage to the counters: its records are built, never written
        (the store takes their numbers only)."""
        try:
            records = outcome.records()
            if records:
                self.store.count_usage(records)
        except Exception as exc:  # the client gets its answer; the usage report under-counts (logged)
            logger.error(
                "usage not counted for a request that is not stored",
                extra={
                    "request_id": outcome.plan.request_id,
                    "error": str(exc) if isinstance(exc, StoreError) else type(exc).__name__,
                },
            )

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
