"""Batch records, their counter and their per-line results, in the gateway's DynamoDB table.

```
batch    pk=BATCH#{id}  sk=BATCH            status, keys, timestamps, project; gsi2pk=BATCHES gsi2sk={created_us}#{id}
counter  pk=BATCH#{id}  sk=COUNTER          total, done, completed, failed, seen (number set of message numbers)
result   pk=BATCH#{id}  sk=LINE#{index:09}  the output line (or the S3 key of a large one); TTL expires_at
```
Exactly once per line, without transactions: the splitter numbers its messages, and a worker counts
a message's lines with one conditional update of the counter item, `ADD seen :{n}, done :lines, ...
IF NOT contains(seen, n)`. A redelivered (or re-sent) message fails the condition and counts nothing.
The update returns the new counts: the worker whose update makes `done == total` assembles (after
winning a conditional claim, which also lets a redelivery take over from an assembler that died).
The counter is its own item so that the listing index (GSI2) is not rewritten on every update.
Low-level client calls, like the completion store.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field

from handler.aws import LazyClient
from handler.batch.files import FileTable, batch_file, batch_file_id
from handler.store.dynamo import (
    DynamoClient,
    Item,
    conditional,
    get_items,
    query_items,
    query_pages,
    time_key,
    write_items,
)

BatchStatus = Literal["validating", "in_progress", "completed", "failed", "cancelling", "cancelled"]
RUNNING: tuple[BatchStatus, ...] = ("validating", "in_progress")
OUTPUT_FILE = "output"
ERROR_FILE = "errors"
_LIST_PARTITION = "BATCHES"
_LIST_PAGES = 10  # a filtered listing page can come back short: read on, this many pages at most


class BatchJob(BaseModel):
    id: str
    source: Literal["s3", "api"]
    input_key: str
    output_key: str
    project: str | None = None
    status: BatchStatus = "validating"
    input_etag: str | None = None
    total: int | None = None  # known once the whole input file has been read
    done: int = 0
    completed: int = 0
    failed: int = 0
    created_at: float = Field(default_factory=time.time)
    in_progress_at: float | None = None
    completed_at: float | None = None
    failed_at: float | None = None
    error: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    # OpenAI's batch fields (`client.batches`): the uploaded file it reads, its endpoint and window,
    # the split output files written at assembly (successes / failures), cancellation.
    endpoint: str = "/v1/chat/completions"
    completion_window: str = "24h"
    input_file_id: str | None = None
    output_file_key: str | None = None
    error_file_key: str | None = None
    output_bytes: int | None = None
    error_bytes: int | None = None
    cancelling_at: float | None = None
    cancelled_at: float | None = None
    # How the splitter packs lines into messages: fixed at creation, so that a re-split after a
    # crash numbers the same lines the same way even if the settings changed in between.
    lines_per_message: int = 10
    message_bytes: int = 192_000

    def file_id(self, which: str) -> str | None:
        """The id of the output (`OUTPUT_FILE`) or error file, once written and not empty."""
        key = self.output_file_key if which == OUTPUT_FILE else self.error_file_key
        return None if key is None else batch_file_id(self.id, which)

    def public(self) -> dict[str, Any]:
        """The wire shape of `GET /api/v1/batches/{id}`: OpenAI's batch object (timestamps in Unix
        seconds) with this gateway's fields (project, source, keys, error)."""

        def ts(value: float | None) -> int | None:
            return None if value is None else int(value)

        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": None
            if self.error is None
            else {"object": "list", "data": [{"code": "batch_failed", "message": self.error, "line": None}]},
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "output_file_id": self.file_id(OUTPUT_FILE),
            "error_file_id": self.file_id(ERROR_FILE),
            "finalizing_at": None,
            "cancelling_at": ts(self.cancelling_at),
            "cancelled_at": ts(self.cancelled_at),
            "expires_at": ts(self.created_at + 86_400),
            "expired_at": None,
            "project": self.project,
            "status": self.status,
            "source": self.source,
            "input_key": self.input_key,
            "output_key": self.output_key,
            "request_counts": {"total": self.total or 0, "completed": self.completed, "failed": self.failed},
            "created_at": ts(self.created_at),
            "in_progress_at": ts(self.in_progress_at),
            "completed_at": ts(self.completed_at),
            "failed_at": ts(self.failed_at),
            "error": self.error,
            "metadata": self.metadata,
        }


@dataclass(frozen=True)
class LineResult:
    """One output line, inline or (large) as an S3 key."""

    index: int
    ok: bool
    line: str | None = None
    part: str | None = None


@dataclass(frozen=True)
class Counts:
    total: int | None
    done: int
    completed: int
    failed: int
    assembled: bool = False

    @property
    def all_done(self) -> bool:
        return self.total is not None and self.done >= self.total


def batch_key(batch_id: str) -> Item:
    return {"pk": {"S": f"BATCH#{batch_id}"}, "sk": {"S": "BATCH"}}


def counter_key(batch_id: str) -> Item:
    return {"pk": {"S": f"BATCH#{batch_id}"}, "sk": {"S": "COUNTER"}}


def result_key(batch_id: str, index: int) -> Item:
    return {"pk": {"S": f"BATCH#{batch_id}"}, "sk": {"S": f"LINE#{index:09d}"}}


_OPTIONAL_NUMBERS = (
    "total",
    "in_progress_at",
    "completed_at",
    "failed_at",
    "lines_per_message",
    "message_bytes",
    "output_bytes",
    "error_bytes",
    "cancelling_at",
    "cancelled_at",
)
_OPTIONAL_STRINGS = (
    "project",
    "input_etag",
    "error",
    "endpoint",
    "completion_window",
    "input_file_id",
    "output_file_key",
    "error_file_key",
)
_INTS = ("total", "lines_per_message", "message_bytes", "output_bytes", "error_bytes")
# The counter item without its (large) set of message numbers.
_COUNTER_PROJECTION = "#total, #done, completed, failed, assembled"
_COUNTER_NAMES = {"#total": "total", "#done": "done"}


def _n(item: Item, name: str) -> int:
    return int(item[name]["N"]) if name in item else 0


def counts_from_item(item: Item) -> Counts:
    return Counts(
        total=int(item["total"]["N"]) if "total" in item else None,
        done=_n(item, "done"),
        completed=_n(item, "completed"),
        failed=_n(item, "failed"),
        assembled=bool(item.get("assembled", {}).get("BOOL", False)),
    )


def job_from_items(item: Item, counter: Item | None) -> BatchJob:
    data: dict[str, Any] = {
        "id": item["id"]["S"],
        "source": item["source"]["S"],
        "input_key": item["input_key"]["S"],
        "output_key": item["output_key"]["S"],
        "status": item["status"]["S"],
        "created_at": float(item["created_at"]["N"]),
        "metadata": orjson.loads(item["metadata"]["S"]) if "metadata" in item else {},
    }
    for name in _OPTIONAL_NUMBERS:
        if name in item:
            data[name] = int(item[name]["N"]) if name in _INTS else float(item[name]["N"])
    for name in _OPTIONAL_STRINGS:
        if name in item:
            data[name] = item[name]["S"]
    # Live counts from the counter; the batch item keeps a copy of the final ones.
    source = counter if counter is not None else item
    if "total" not in data and "total" in source:  # set on the counter first (a batch cancelled early)
        data["total"] = int(source["total"]["N"])
    data.update(done=_n(source, "done"), completed=_n(source, "completed"), failed=_n(source, "failed"))
    return BatchJob.model_validate(data)


class BatchTable:
    def __init__(
        self, table_name: str, client: DynamoClient | None = None, result_ttl_days: int = 14
    ) -> None:
        self._table = table_name
        self._client = client
        self._ttl_s = result_ttl_days * 86_400

    client = LazyClient("dynamodb")

    def _update_counter(self, batch_id: str, **params: object) -> Item:
        response: Item = self.client.update_item(TableName=self._table, Key=counter_key(batch_id), **params)
        return response

    # --- the batch record ------------------------------------------------------------------------

    def create(self, job: BatchJob) -> bool:
        """Write a new record; False when a record with this id exists (a repeated start event)."""
        item: Item = {
            **batch_key(job.id),
            "type": {"S": "batch"},
            "id": {"S": job.id},
            "source": {"S": job.source},
            "input_key": {"S": job.input_key},
            "output_key": {"S": job.output_key},
            "status": {"S": job.status},
            "created_at": {"N": repr(job.created_at)},
            "metadata": {"S": orjson.dumps(job.metadata).decode()},
            "lines_per_message": {"N": str(job.lines_per_message)},
            "message_bytes": {"N": str(job.message_bytes)},
            "gsi2pk": {"S": _LIST_PARTITION},
            "gsi2sk": {"S": time_key(job.created_at, job.id)},
        }
        for name in _OPTIONAL_STRINGS:
            value = getattr(job, name)
            if value is not None:
                item[name] = {"S": value}
        created = conditional(
            lambda: self.client.put_item(
                TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        )
        return created is not None

    def get(self, batch_id: str) -> BatchJob | None:
        """The record with its live counts (the batch item and the counter item, in one read)."""
        found = get_items(
            self.client,
            self._table,
            [batch_key(batch_id), counter_key(batch_id)],
            what=f"batch {batch_id}: reading the record",
            consistent=True,
        )
        items = {item["sk"]["S"]: item for item in found}
        if "BATCH" not in items:
            return None
        return job_from_items(items["BATCH"], items.get("COUNTER"))

    def counts(self, batch_id: str) -> Counts:
        item = self.client.get_item(
            TableName=self._table,
            Key=counter_key(batch_id),
            ConsistentRead=True,
            ProjectionExpression=_COUNTER_PROJECTION,
            ExpressionAttributeNames=_COUNTER_NAMES,
        ).get("Item", {})
        return counts_from_item(item)

    def start(self, batch_id: str, total: int, project: str | None) -> Counts:
        """The whole file is queued: the total goes to the counter, then the record is `in_progress`.

        In that order: the counter decides completion, and a splitter that dies between the two
        writes is retried (S3 retries the event) and finds the record still `validating`.
        """
        counter = self._update_counter(
            batch_id,
            UpdateExpression="SET #total = :total",
            ExpressionAttributeNames={"#total": "total"},
            ExpressionAttributeValues={":total": {"N": str(total)}},
            ReturnValues="ALL_NEW",
        )["Attributes"]
        names = {"#status": "status", "#total": "total"}
        values: dict[str, Any] = {
            ":validating": {"S": "validating"},
            ":in_progress": {"S": "in_progress"},
            ":total": {"N": str(total)},
            ":now": {"N": repr(time.time())},
        }
        update = "SET #status = :in_progress, #total = :total, in_progress_at = :now"
        if project is not None:
            update += ", #project = if_not_exists(#project, :project)"
            names["#project"] = "project"
            values[":project"] = {"S": project}
        conditional(  # refused when already started (or finished) by another splitter
            lambda: self.client.update_item(
                TableName=self._table,
                Key=batch_key(batch_id),
                UpdateExpression=update,
                ConditionExpression="attribute_exists(pk) AND #status = :validating",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        )
        return counts_from_item(counter)

    def fail(self, batch_id: str, message: str) -> None:
        """The batch as a whole cannot run (its input is missing, changed or empty)."""
        conditional(  # refused when it is no longer `validating`: the first verdict stands
            lambda: self.client.update_item(
                TableName=self._table,
                Key=batch_key(batch_id),
                UpdateExpression="SET #status = :failed, failed_at = :now, #error = :error",
                ConditionExpression="attribute_exists(pk) AND #status = :validating",
                ExpressionAttributeNames={"#status": "status", "#error": "error"},
                ExpressionAttributeValues={
                    ":failed": {"S": "failed"},
                    ":validating": {"S": "validating"},
                    ":now": {"N": repr(time.time())},
                    ":error": {"S": message[:1000]},
                },
            )
        )

    # --- results and counters --------------------------------------------------------------------

    def write_results(self, batch_id: str, results: Sequence[LineResult]) -> None:
        """Put the result items (a rewrite by a redelivery puts the same lines again)."""
        expires_at = str(int(time.time()) + self._ttl_s)
        requests: list[Item] = []
        for r in results:
            item: Item = {
                **result_key(batch_id, r.index),
                "type": {"S": "batch_result"},
                "ok": {"BOOL": r.ok},
                "expires_at": {"N": expires_at},
            }
            if r.part is not None:
                item["part"] = {"S": r.part}
            else:
                item["line"] = {"S": r.line or ""}
            requests.append({"PutRequest": {"Item": item}})
        write_items(self.client, self._table, requests, what=f"batch {batch_id}: writing result items")

    def count(self, batch_id: str, seq: int, results: Sequence[LineResult]) -> Counts | None:
        """Count message `seq`'s lines, once. The new counts, or None if it was counted before."""
        ok = sum(1 for r in results if r.ok)
        response = conditional(
            lambda: self._update_counter(
                batch_id,
                UpdateExpression="ADD seen :seqs, #done :done, completed :ok, failed :failed SET updated_at = :now",
                ConditionExpression="NOT contains(seen, :seq)",
                ExpressionAttributeNames={"#done": "done"},
                ExpressionAttributeValues={
                    ":seqs": {"NS": [str(seq)]},
                    ":seq": {"N": str(seq)},
                    ":done": {"N": str(len(results))},
                    ":ok": {"N": str(ok)},
                    ":failed": {"N": str(len(results) - ok)},
                    ":now": {"N": repr(time.time())},
                },
                ReturnValues="ALL_NEW",
            )
        )
        return None if response is None else counts_from_item(response["Attributes"])

    def results(self, batch_id: str) -> Iterator[Item]:
        """Result items in input order."""
        yield from query_items(
            self.client,
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :line)",
            ExpressionAttributeValues={":pk": {"S": f"BATCH#{batch_id}"}, ":line": {"S": "LINE#"}},
            ConsistentRead=True,
        )

    # --- assembly --------------------------------------------------------------------------------

    def claim_assembly(self, batch_id: str, token: str, lease_s: int) -> bool:
        """True for exactly one caller once every line is counted (or once a stale claim expired)."""
        now = time.time()
        claimed = conditional(
            lambda: self._update_counter(
                batch_id,
                UpdateExpression="SET assembler = :token, assembler_until = :until",
                ConditionExpression=(
                    "#done = #total AND attribute_not_exists(assembled) "
                    "AND (attribute_not_exists(assembler_until) OR assembler_until < :now)"
                ),
                ExpressionAttributeNames={"#total": "total", "#done": "done"},
                ExpressionAttributeValues={
                    ":token": {"S": token},
                    ":until": {"N": repr(now + lease_s)},
                    ":now": {"N": repr(now)},
                },
            )
        )
        return claimed is not None

    def cancel(self, batch_id: str) -> bool:
        """`cancelling` from `validating` / `in_progress`; False when the batch had already ended."""
        done = conditional(
            lambda: self.client.update_item(
                TableName=self._table,
                Key=batch_key(batch_id),
                UpdateExpression="SET #status = :cancelling, cancelling_at = :now",
                ConditionExpression="attribute_exists(pk) AND #status IN (:validating, :in_progress)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":cancelling": {"S": "cancelling"},
                    ":validating": {"S": "validating"},
                    ":in_progress": {"S": "in_progress"},
                    ":now": {"N": repr(time.time())},
                },
            )
        )
        return done is not None

    def status(self, batch_id: str) -> str | None:
        item = self.client.get_item(
            TableName=self._table,
            Key=batch_key(batch_id),
            ConsistentRead=True,
            ProjectionExpression="#status",
            ExpressionAttributeNames={"#status": "status"},
        ).get("Item")
        return None if item is None else str(item["status"]["S"])

    def complete(
        self,
        batch_id: str,
        token: str,
        counts: Counts,
        files: dict[str, tuple[str, int]] | None = None,
        project: str | None = None,
    ) -> None:
        """The output is written: the record says so (with the final counts and the split files'
        keys and sizes), then the files' listing items (of the batch's `project`), then the
        counter. A batch being cancelled ends `cancelled`."""
        at = time.time()
        now = {"N": repr(at)}
        update = (
            "SET #status = :completed, completed_at = :now, #done = :done, completed = :ok, failed = :failed"
        )
        values: dict[str, Any] = {
            ":now": now,
            ":done": {"N": str(counts.done)},
            ":ok": {"N": str(counts.completed)},
            ":failed": {"N": str(counts.failed)},
        }
        for which, (key, size) in (files or {}).items():
            name = "output" if which == OUTPUT_FILE else "error"
            update += f", {name}_file_key = :{name}_key, {name}_bytes = :{name}_bytes"
            values[f":{name}_key"] = {"S": key}
            values[f":{name}_bytes"] = {"N": str(size)}
        cancelled = conditional(
            lambda: self.client.update_item(
                TableName=self._table,
                Key=batch_key(batch_id),
                UpdateExpression=update.replace("completed_at = :now", "cancelled_at = :now"),
                ConditionExpression="attribute_exists(pk) AND #status = :cancelling",
                ExpressionAttributeNames={"#status": "status", "#done": "done"},
                ExpressionAttributeValues={
                    **values,
                    ":completed": {"S": "cancelled"},
                    ":cancelling": {"S": "cancelling"},
                },
            )
        )
        if cancelled is None:
            self.client.update_item(
                TableName=self._table,
                Key=batch_key(batch_id),
                UpdateExpression=update,
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#status": "status", "#done": "done"},
                ExpressionAttributeValues={**values, ":completed": {"S": "completed"}},
            )
        if project is not None:  # a batch of no project is listed by no key's files
            listing = FileTable(self._table, self.client)
            for which, (key, size) in (files or {}).items():
                listing.put(batch_file(batch_id, which, project, key, size, at))
        self._update_counter(
            batch_id,
            UpdateExpression="SET assembled = :true REMOVE assembler_until",
            ConditionExpression="assembler = :token",
            ExpressionAttributeValues={":true": {"BOOL": True}, ":token": {"S": token}},
        )

    # --- listing ---------------------------------------------------------------------------------

    def page(
        self, projects: frozenset[str] | None, limit: int, after: str | None = None
    ) -> tuple[list[BatchJob], str | None]:
        """Newest first; `projects=None` lists every project's. Returns the page and the next cursor."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "GSI2",
            "KeyConditionExpression": "gsi2pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": _LIST_PARTITION}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if projects is not None:
            if not projects:
                return [], None
            names = sorted(projects)
            kwargs["FilterExpression"] = f"#project IN ({', '.join(f':p{i}' for i in range(len(names)))})"
            kwargs["ExpressionAttributeNames"] = {"#project": "project"}
            kwargs["ExpressionAttributeValues"].update({f":p{i}": {"S": p} for i, p in enumerate(names)})
        if after:
            kwargs["ExclusiveStartKey"] = {
                **batch_key(after.partition("#")[2]),
                "gsi2pk": {"S": _LIST_PARTITION},
                "gsi2sk": {"S": after},
            }
        items: list[Item] = []
        cursor: str | None = None
        for read, page in enumerate(query_pages(self.client, **kwargs), start=1):
            items.extend(page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            cursor = last["gsi2sk"]["S"] if last else None
            if last is None or len(items) >= limit or read == _LIST_PAGES:
                break
        if len(items) > limit:
            items = items[:limit]
            cursor = items[-1]["gsi2sk"]["S"]
        counters = self._counters([item["id"]["S"] for item in items])
        return [job_from_items(item, counters.get(item["id"]["S"])) for item in items], cursor

    def _counters(self, batch_ids: list[str]) -> dict[str, Item]:
        found = get_items(
            self.client,
            self._table,
            [counter_key(b) for b in batch_ids],
            what="reading batch counters",
            projection=f"pk, {_COUNTER_PROJECTION}",
            names=_COUNTER_NAMES,
        )
        return {item["pk"]["S"].removeprefix("BATCH#"): item for item in found}
