"""One request in, one result out, exactly once: batch lines and single queued chat requests.

Each request runs under Powertools Idempotency (DynamoDB, keyed by `{batch}#{line}` or by the SQS
message id), so a redelivered message returns the recorded result instead of calling the model again.
Powertools marks a request complete only after it returned; a worker that dies in between (the answer
stored, the idempotency record still in progress) is covered twice more:
- the completion's ids are derived from the same key, so a rerun writes the same records, never
  additional ones, and a rerun first looks for a stored answer and reuses it without calling a model;
- result lines are counted by a conditional transaction (`jobs.BatchTable.record_results`).

Idempotency's calls are synchronous (boto3): each request runs in a thread of a dedicated pool, and
hands its model call back to the invocation's event loop. The pool's size bounds the concurrency.
"""

from __future__ import annotations

import asyncio
import functools
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from handler.batch.assemble import maybe_assemble
from handler.batch.jobs import BatchTable, LineResult
from handler.batch.lines import (
    Work,
    batch_error_line,
    choice_ids_for,
    dumps,
    http_error_line,
    is_success,
    request_id_for,
    response_line,
)
from handler.batch.objects import Blobs, Replies
from handler.batch.splitter import PARTS_PREFIX
from handler.observability import logger
from handler.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from handler.completions.planning import Plan
    from handler.completions.service import CompletionService
    from handler.contract.chat import ChatResponse


class BadMessage(Exception):
    """A queued request that can never succeed as sent: it fails, and reaches the DLQ after N receives."""


@dataclass(frozen=True)
class Delivery:
    """What a worker needs of one SQS record."""

    message_id: str
    body: str
    kind: str | None
    receive_count: int


class Idempotency:
    """Powertools Idempotency on the idempotency table (key `id`), built on first use."""

    def __init__(self, table_name: str, client: Any, ttl_s: int) -> None:
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

        self.persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=client)
        self.config = IdempotencyConfig(
            event_key_jmespath="key", raise_on_no_idempotency_key=True, expires_after_seconds=ttl_s
        )

    def wrap(self, function: Callable[..., dict[str, Any]], prefix: str) -> Callable[..., dict[str, Any]]:
        """`function(task=..., **rest)` runs once per `task["key"]`; later calls return its result."""
        from aws_lambda_powertools.utilities.idempotency import idempotent_function

        wrapped: Callable[..., dict[str, Any]] = idempotent_function(
            function,
            data_keyword_argument="task",
            persistence_store=self.persistence,
            config=self.config,
            key_prefix=prefix,
        )
        return wrapped

    def register(self, context: Any) -> None:
        """In-progress records expire with the invocation, so a crashed attempt can be retried."""
        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            self.config.register_lambda_context(context)


def parse_reply_to(value: Any) -> dict[str, str] | None:
    """`"https://sqs…"` or `{"queue_url": …}`: an SQS queue; `"name-or-arn"` or `{"event_bus": …}`: EventBridge."""
    if value is None:
        return None
    if isinstance(value, str) and value:
        return {"queue_url": value} if value.startswith(("https://", "http://")) else {"event_bus": value}
    if isinstance(value, dict):
        keys = {"queue_url", "event_bus", "source", "detail_type"}
        valid = set(value) <= keys and all(isinstance(v, str) and v for v in value.values())
        if valid and ("queue_url" in value) != ("event_bus" in value):
            return dict(value)
    raise BadMessage(
        "reply_to: an SQS queue URL, an EventBridge bus name or ARN, or {queue_url} / {event_bus}"
    )


def _cancelled(work: Work) -> Work:
    return Work(
        work.index,
        work.custom_id,
        error=("batch_cancelled", "the batch was cancelled before this line started"),
    )


class Worker:
    def __init__(
        self,
        service: Callable[[], CompletionService],
        table: BatchTable,
        blobs: Blobs,
        replies: Replies,
        settings: Settings,
        idempotency: Idempotency,
    ) -> None:
        self._service = service
        self.table = table
        self.blobs = blobs
        self.replies = replies
        self.settings = settings
        self.idempotency = idempotency
        self._pool = ThreadPoolExecutor(settings.batch_concurrency, thread_name_prefix="batch-request")
        self._line = idempotency.wrap(self._run_line, "batch-line")
        self._request = idempotency.wrap(self._run_request, "sqs-request")

    # --- batch lines -----------------------------------------------------------------------------

    async def lines(self, delivery: Delivery) -> None:
        """A message of a batch file: answer its lines, count them once, assemble if they were the last."""
        message = orjson.loads(delivery.body)
        batch_id: str = message["batch_id"]
        project: str | None = message.get("project")
        last_try = delivery.receive_count >= self.settings.batch_max_receives
        works = [Work.from_wire(w) for w in message["lines"]]
        if await asyncio.to_thread(self.table.status, batch_id) in ("cancelling", "cancelled"):
            # Lines not started yet end as errors; a line answered before keeps its answer (Idempotency
            # returns it by key, whatever the payload says now).
            works = [w if w.error else _cancelled(w) for w in works]
        redelivered = delivery.receive_count > 1
        # Every line runs to its end before the message succeeds or fails: the ones that succeeded
        # are recorded by Idempotency, and nothing is left running when the invocation returns.
        settled = await asyncio.gather(
            *(self._one_line(batch_id, project, w, redelivered, last_try) for w in works),
            return_exceptions=True,
        )
        results: list[LineResult] = []
        for outcome in settled:
            if isinstance(outcome, BaseException):
                raise outcome
            results.append(outcome)
        await asyncio.to_thread(self._record, batch_id, int(message["seq"]), results)

    def _record(self, batch_id: str, seq: int, results: list[LineResult]) -> None:
        """Results first, then the count: when `done == total`, every result is there to assemble."""
        self.table.write_results(batch_id, results)
        counts = self.table.count(batch_id, seq, results)
        # counts is None for a message counted before: look again, its first run may have died assembling.
        maybe_assemble(self.table, self.blobs, batch_id, self.settings.batch_assembly_lease_s, counts)

    async def _one_line(
        self, batch_id: str, project: str | None, work: Work, redelivered: bool, last_try: bool
    ) -> LineResult:
        from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

        task: dict[str, Any] = {
            "key": f"{batch_id}#{work.index}",  # the idempotency key; the rest is payload
            "batch_id": batch_id,
            "project": project,
            "work": work.to_wire(),
            "recheck": redelivered,
        }
        loop = asyncio.get_running_loop()
        try:
            out = await loop.run_in_executor(self._pool, functools.partial(self._line, task=task, loop=loop))
        except IdempotencyAlreadyInProgressError:
            raise  # another worker has this line right now: retry the message later
        except Exception:
            if not last_try:
                raise
            # The message's last receive: an error line, so that the batch still finishes.
            logger.exception(
                "batch line failed on its last receive", extra={"batch_id": batch_id, "line": work.index}
            )
            seed = f"{batch_id}#{work.index}"
            line = batch_error_line(
                seed, work.custom_id, "internal_error", "the request failed on every attempt"
            )
            out = await asyncio.to_thread(self._stash, batch_id, work.index, line)
        return LineResult(index=work.index, ok=bool(out["ok"]), line=out.get("line"), part=out.get("part"))

    def _run_line(self, *, task: dict[str, Any], loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
        line = asyncio.run_coroutine_threadsafe(self._answer_line(task), loop).result()
        return self._stash(task["batch_id"], int(task["work"]["i"]), line)

    async def _answer_line(self, task: dict[str, Any]) -> dict[str, Any]:
        work = Work.from_wire(task["work"])
        seed: str = task["key"]
        if work.error is not None:
            return batch_error_line(seed, work.custom_id, *work.error)
        body = work.body
        if work.part is not None:
            # The part holds the whole input line (checked by the splitter): the request is its body.
            stored = orjson.loads(await asyncio.to_thread(self.blobs.get, work.part))
            body = stored.get("body") if isinstance(stored, dict) else None
        project = task.get("project")
        return await self.answer(seed, work.custom_id, body or {}, project, bool(task.get("recheck")))

    def _stash(self, batch_id: str, index: int, line: dict[str, Any]) -> dict[str, Any]:
        """The result as Idempotency records it: inline, or an S3 key when it is large."""
        text = dumps(line)
        if len(text) <= self.settings.batch_inline_bytes:
            return {"ok": is_success(line), "line": text}
        part = f"{PARTS_PREFIX}{batch_id}/out-{index:09d}.json"
        self.blobs.put(part, text.encode())
        return {"ok": is_success(line), "part": part}

    # --- single queued requests --------------------------------------------------------------------

    async def request(self, delivery: Delivery) -> None:
        """A message whose body is a chat request (+ optional `custom_id`, `reply_to`)."""
        try:
            body = orjson.loads(delivery.body)
        except orjson.JSONDecodeError:
            raise BadMessage("message body is not JSON") from None
        if not isinstance(body, dict):
            raise BadMessage("message body must be a JSON object")
        custom_id = body.pop("custom_id", None)
        if custom_id is not None and not isinstance(custom_id, str):
            raise BadMessage("custom_id must be a string")
        reply_to = parse_reply_to(body.pop("reply_to", None))
        task = {
            "key": f"sqs#{delivery.message_id}",
            "custom_id": custom_id,
            "reply_to": reply_to,
            "body": body,
            "recheck": delivery.receive_count > 1,
        }
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, functools.partial(self._request, task=task, loop=loop))

    def _run_request(self, *, task: dict[str, Any], loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
        # The reply is sent inside the idempotent call: a redelivery after success sends nothing.
        line = asyncio.run_coroutine_threadsafe(
            self.answer(task["key"], task["custom_id"], task["body"], None, bool(task["recheck"])), loop
        ).result()
        response = line["response"] or {}
        if task["reply_to"] is not None:
            self.replies.send(task["reply_to"], dumps(line))
        logger.info(
            "queued request answered",
            extra={
                "custom_id": task["custom_id"],
                "status_code": response.get("status_code"),
                "replied": bool(task["reply_to"]),
            },
        )
        return {
            "ok": is_success(line),
            "status_code": response.get("status_code"),
            "request_id": response.get("request_id"),
        }

    # --- the answer ------------------------------------------------------------------------------

    async def answer(
        self,
        seed: str,
        custom_id: str | None,
        body: dict[str, Any],
        project: str | None,
        recheck: bool = True,
    ) -> dict[str, Any]:
        """The output line for one request body: the same response, or the same error, as a live call.

        The store is forced on. Ids derive from `seed`, so a rerun rewrites the same records, never
        adds some. With `recheck` (a redelivery: an earlier run may have stored the answer and died
        before Idempotency recorded it) a stored answer is reused without calling a model. A first
        delivery skips that read: a run it could race with writes the very same records.
        """
        from pydantic import ValidationError

        from handler.completions.caller import Caller
        from handler.completions.planning import Overrides
        from handler.contract.chat import ChatRequest
        from handler.contract.errors import body_of, validation_error
        from handler.errors import GatewayError

        try:
            req = ChatRequest.model_validate(body)
        except ValidationError as exc:
            err = validation_error(list(exc.errors()))
            return http_error_line(seed, custom_id, None, err.status, body_of(err))
        if req.stream:
            req = req.model_copy(update={"stream": False, "stream_options": None})
        service = self._service()
        request_id: str | None = None
        try:
            overrides = Overrides(
                store=True,
                request_id=request_id_for(seed),
                choice_ids=tuple(choice_ids_for(seed, req.effective_n)),
            )
            plan = await service.plan(req, time.perf_counter(), Caller.of_batch(project), overrides)
            request_id = plan.request_id
            response = await asyncio.to_thread(stored_response, service, plan) if recheck else None
            if response is None:
                response = (await service.complete(plan)).response()
        except GatewayError as exc:
            return http_error_line(seed, custom_id, request_id, exc.status, body_of(exc))
        return response_line(seed, custom_id, request_id, response.model_dump(exclude_none=True))


def stored_response(service: CompletionService, plan: Plan) -> ChatResponse | None:
    """The response rebuilt from this request's stored records, when a previous run completed it."""
    from handler.contract.chat import ChatResponse, Choice, ResponseMessage, Usage

    records = []
    for completion_id in plan.choice_ids:
        record = service.store.get_completion(completion_id)
        if record is None or record.status != "completed":
            return None
        records.append(record)
    if not records:
        return None
    first = records[0]
    completion_tokens = sum(r.usage.completion_tokens for r in records)
    return ChatResponse(
        id=first.request_id,
        created=int(first.created),
        model=first.model,
        session_id=first.session_id,
        choices=[
            Choice(
                index=r.index,
                completion_id=r.completion_id,
                model=r.model,
                finish_reason=r.finish_reason,
                message=ResponseMessage(id=r.completion_id, content=r.content, tool_calls=r.tool_calls),  # type: ignore[arg-type]
            )
            for r in records
        ],
        usage=Usage(
            prompt_tokens=first.usage.prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=first.usage.prompt_tokens + completion_tokens,
        ),
    )
