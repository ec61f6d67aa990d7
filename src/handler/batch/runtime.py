"""The batch runtime: its adapters, built from settings, and the dispatch of S3 and SQS events to
the splitter and the worker. The composition root (`handler/wiring.py`) builds one per process and
hands it the completion service's factory, so that this package never imports upward."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from handler.batch.files import FileTable
from handler.batch.jobs import BatchJob, BatchTable
from handler.batch.objects import KIND, KIND_LINES, KIND_SPLIT, Blobs, Replies, WorkQueue
from handler.batch.splitter import Splitter
from handler.observability import logger
from handler.settings import Settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from handler.batch.worker import Delivery, Worker
    from handler.completions.service import CompletionService


class Runtime:
    def __init__(self, settings: Settings, service: Callable[[], CompletionService]) -> None:
        self.settings = settings
        self._service = service
        self.table = BatchTable(settings.table_name, result_ttl_days=settings.batch_result_ttl_days)
        self.blobs = Blobs(settings.bucket_name or "")
        self.queue = WorkQueue(settings.batch_queue_url or "")
        self.files = FileTable(settings.table_name)
        self.splitter = Splitter(self.table, self.blobs, self.queue, settings, settings.max_body_bytes)
        self._worker: Worker | None = None
        self._lock = threading.Lock()

    @property
    def worker(self) -> Worker:
        with self._lock:
            if self._worker is None:
                from handler import aws
                from handler.batch.worker import Idempotency, Worker

                idempotency = Idempotency(
                    self.settings.idempotency_table_name,
                    aws.client("dynamodb"),
                    self.settings.idempotency_ttl_s,
                )
                self._worker = Worker(
                    self._service, self.table, self.blobs, Replies(), self.settings, idempotency
                )
            return self._worker

    async def handle_record(self, record: SQSRecord) -> None:
        """One SQS record: a batch message (by its `kind` attribute) or a single chat request."""
        from handler.batch.worker import Delivery

        attribute = record.message_attributes[KIND]
        delivery = Delivery(
            message_id=record.message_id,
            body=record.body or "",
            kind=attribute.string_value if attribute is not None else None,
            receive_count=int(record.attributes.approximate_receive_count or 1),
        )
        if delivery.kind == KIND_LINES:
            await self.worker.lines(delivery)
        elif delivery.kind == KIND_SPLIT:
            await asyncio.to_thread(self.split_queued, delivery)
        else:
            await self.worker.request(delivery)

    def split_queued(self, delivery: Delivery) -> None:
        """`POST /api/v1/batches` queued this batch: split it here, where there are 15 minutes."""
        import orjson

        batch_id = orjson.loads(delivery.body)["batch_id"]
        job = self.table.get(batch_id)
        if job is None:
            logger.warning("split requested for an unknown batch", extra={"batch_id": batch_id})
            return
        self.splitter.resume(job)

    def start(self, job: BatchJob) -> None:
        """Record an API-created batch and queue its split."""
        self.table.create(job)
        self.queue.send({"batch_id": job.id}, KIND_SPLIT)


def handle_s3_event(rt: Runtime, event: dict[str, Any]) -> dict[str, Any]:
    """S3 ObjectCreated records: start a batch per input file."""
    batches = []
    for record in event.get("Records", []):
        s3 = record.get("s3", {})
        obj = s3.get("object", {})
        etag = obj.get("eTag")
        batch_id = rt.splitter.on_object_created(
            s3.get("bucket", {}).get("name", ""),
            unquote_plus(obj.get("key", "")),
            f'"{etag}"' if etag else None,
            obj.get("sequencer"),
        )
        job = rt.table.get(batch_id) if batch_id else None
        if job is not None:
            batches.append(
                {"id": job.id, "status": job.status, "input_key": job.input_key, "output_key": job.output_key}
            )
    return {"batches": batches}


def handle_sqs_event(rt: Runtime, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS records, concurrently; the ones that raised are reported back (`batchItemFailures`).

    Every record starts at once on the process's event loop; Powertools' `BatchProcessor` then
    collects each record's outcome in order and builds the partial batch response.
    """
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    rt.worker.idempotency.register(context)
    loop = event_loop()
    running: dict[str, list[Future[None]]] = {}
    for raw in event.get("Records", []):
        future = asyncio.run_coroutine_threadsafe(rt.handle_record(SQSRecord(raw)), loop)
        running.setdefault(raw.get("messageId", ""), []).append(future)

    def record_handler(record: SQSRecord) -> None:
        running[record.message_id].pop(0).result()

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)


_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def event_loop() -> asyncio.AbstractEventLoop:
    """One event loop per process, in its own thread, reused by every invocation (like Mangum's):
    pooled upstream connections survive between invocations, and the caller's thread keeps its own
    event-loop state (`asyncio.run` would leave it without a current loop)."""
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="batch-event-loop", daemon=True).start()
            _loop = loop
        return _loop
