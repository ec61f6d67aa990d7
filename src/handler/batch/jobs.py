"""Batch records, their counters and their per-line results, in the gateway's DynamoDB table.

```
batch   pk=BATCH#{id}  sk=BATCH           status, counts, keys, timestamps; gsi2pk=BATCHES gsi2sk={created_us}#{id}
result  pk=BATCH#{id}  sk=LINE#{index:09}  the output line (or the S3 key of a large one); TTL expires_at
```
Exactly once per line: a message's result items are written in one transaction with the counter
update, each result conditional on not existing yet. A redelivered message finds its results there
and the transaction refuses to count them again. Low-level client calls, like the completion store.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field

BatchStatus = Literal["validating", "in_progress", "completed", "failed"]
_LIST_PARTITION = "BATCHES"


class BatchJob(BaseModel):
    id: str
    source: Literal["s3", "api"]
    input_key: str
    output_key: str
    project: str | None = None
    status: BatchStatus = "validating"
    input_etag: str | None = None
    total: int | None = None  # known once the whole input file has been read
    completed: int = 0
    failed: int = 0
    created_at: float = Field(default_factory=time.time)
    in_progress_at: float | None = None
    completed_at: float | None = None
    failed_at: float | None = None
    error: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)

    @property
    def done(self) -> int:
        return self.completed + self.failed

    @property
    def all_done(self) -> bool:
        return self.status == "in_progress" and self.total is not None and self.done >= self.total

    def public(self) -> dict[str, Any]:
        """The wire shape of `GET /api/v1/batches/{id}` (timestamps in Unix seconds, like OpenAI's)."""

        def ts(value: float | None) -> int | None:
            return None if value is None else int(value)

        return {
            "id": self.id,
            "object": "batch",
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


class BatchNotFound(Exception):
    pass


def batch_key(batch_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"BATCH#{batch_id}"}, "sk": {"S": "BATCH"}}


def result_key(batch_id: str, index: int) -> dict[str, Any]:
    return {"pk": {"S": f"BATCH#{batch_id}"}, "sk": {"S": f"LINE#{index:09d}"}}


_OPTIONAL_NUMBERS = ("total", "in_progress_at", "completed_at", "failed_at")
_OPTIONAL_STRINGS = ("project", "input_etag", "error")


def job_from_item(item: dict[str, Any]) -> BatchJob:
    data: dict[str, Any] = {
        "id": item["id"]["S"],
        "source": item["source"]["S"],
        "input_key": item["input_key"]["S"],
        "output_key": item["output_key"]["S"],
        "status": item["status"]["S"],
        "completed": int(item.get("completed", {"N": "0"})["N"]),
        "failed": int(item.get("failed", {"N": "0"})["N"]),
        "created_at": float(item["created_at"]["N"]),
        "metadata": orjson.loads(item["metadata"]["S"]) if "metadata" in item else {},
    }
    for name in _OPTIONAL_NUMBERS:
        if name in item:
            data[name] = float(item[name]["N"])
    for name in _OPTIONAL_STRINGS:
        if name in item:
            data[name] = item[name]["S"]
    if "total" in data:
        data["total"] = int(data["total"])
    return BatchJob.model_validate(data)


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class BatchTable:
    def __init__(self, table_name: str, client: Any = None, result_ttl_days: int = 14) -> None:
        self._table = table_name
        self._client = client
        self._ttl_s = result_ttl_days * 86_400

    @property
    def client(self) -> Any:
        if self._client is None:
            from handler import aws

            self._client = aws.client("dynamodb")
        return self._client

    # --- the batch record ------------------------------------------------------------------------

    def create(self, job: BatchJob) -> bool:
        """Write a new record; False when a record with this id exists (a duplicate start event)."""
        item: dict[str, Any] = {
            **batch_key(job.id),
            "type": {"S": "batch"},
            "id": {"S": job.id},
            "source": {"S": job.source},
            "input_key": {"S": job.input_key},
            "output_key": {"S": job.output_key},
            "status": {"S": job.status},
            "completed": {"N": "0"},
            "failed": {"N": "0"},
            "done": {"N": "0"},  # completed + failed, kept apart for the assembly claim's condition
            "created_at": {"N": repr(job.created_at)},
            "metadata": {"S": orjson.dumps(job.metadata).decode()},
            "gsi2pk": {"S": _LIST_PARTITION},
            "gsi2sk": {"S": f"{int(job.created_at * 1_000_000):017d}#{job.id}"},
        }
        for name in _OPTIONAL_STRINGS:
            value = getattr(job, name)
            if value is not None:
                item[name] = {"S": value}
        try:
            self.client.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except Exception as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get(self, batch_id: str) -> BatchJob | None:
        item = self.client.get_item(TableName=self._table, Key=batch_key(batch_id), ConsistentRead=True).get("Item")
        return job_from_item(item) if item else None

    def start(self, batch_id: str, total: int, project: str | None) -> BatchJob:
        """The whole file is queued: `validating` -> `in_progress` with its total (idempotent)."""
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
            values[":project"] = {"S": project}
            names["#project"] = "project"
        try:
            item = self.client.update_item(
                TableName=self._table,
                Key=batch_key(batch_id),
                UpdateExpression=update,
                ConditionExpression="attribute_exists(pk) AND #status = :validating",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )["Attributes"]
            return job_from_item(item)
        except Exception as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise
        job = self.get(batch_id)  # another splitter of the same file got there first
        if job is None:
            raise BatchNotFound(batch_id)
        return job

    def fail(self, batch_id: str, message: str) -> None:
        """The batch as a whole cannot run (its input is missing, changed or empty)."""
        try:
            self.client.update_item(
                TableName=self._table,
                Key=batch_key(batch_id),
                UpdateExpression="SET #status = :failed, failed_at = :now, #error = :error",
                ConditionExpression="attribute_exists(pk) AND #status <> :completed",
                ExpressionAttributeNames={"#status": "status", "#error": "error"},
                ExpressionAttributeValues={
                    ":failed": {"S": "failed"},
                    ":completed": {"S": "completed"},
                    ":now": {"N": repr(time.time())},
                    ":error": {"S": message[:1000]},
                },
            )
        except Exception as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise

    # --- results and counters --------------------------------------------------------------------

    def _result_item(self, batch_id: str, result: LineResult, expires_at: int) -> dict[str, Any]:
        item: dict[str, Any] = {
            **result_key(batch_id, result.index),
            "type": {"S": "batch_result"},
            "ok": {"BOOL": result.ok},
            "expires_at": {"N": str(expires_at)},
        }
        if result.part is not None:
            item["part"] = {"S": result.part}
        else:
            item["line"] = {"S": result.line or ""}
        return item

    def record_results(self, batch_id: str, results: Sequence[LineResult]) -> int:
        """Write the results not written yet and count exactly those. Returns how many were new.

        One transaction: every result conditional on not existing, plus the counter update. When
        some results already exist (a redelivery, or a re-split that grouped lines differently),
        the transaction is retried with only the others.
        """
        pending = {r.index: r for r in results}
        attempt = 0
        while pending:
            expires_at = int(time.time()) + self._ttl_s
            batch = [pending[i] for i in sorted(pending)]
            ok = sum(1 for r in batch if r.ok)
            items: list[dict[str, Any]] = [
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": self._result_item(batch_id, r, expires_at),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
                for r in batch
            ]
            items.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": batch_key(batch_id),
                        "UpdateExpression": "ADD completed :ok, failed :failed, #done :done SET updated_at = :now",
                        "ExpressionAttributeNames": {"#done": "done"},
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeValues": {
                            ":ok": {"N": str(ok)},
                            ":failed": {"N": str(len(batch) - ok)},
                            ":done": {"N": str(len(batch))},
                            ":now": {"N": repr(time.time())},
                        },
                    }
                }
            )
            try:
                self.client.transact_write_items(TransactItems=items)
                return len(batch)
            except Exception as exc:
                if _error_code(exc) not in ("TransactionCanceledException", "TransactionConflictException"):
                    raise
                reasons = [r.get("Code") for r in getattr(exc, "response", {}).get("CancellationReasons", [])]
            if reasons and reasons[-1] == "ConditionalCheckFailed":
                raise BatchNotFound(batch_id)
            written = [r.index for r, code in zip(batch, reasons, strict=False) if code == "ConditionalCheckFailed"]
            for index in written:
                pending.pop(index)
            if not written:  # a conflict with a concurrent transaction on the counter: back off, retry
                attempt += 1
                if attempt > 12:
                    raise RuntimeError(f"batch {batch_id}: counter update kept conflicting")
                time.sleep(random.uniform(0, min(0.02 * 2**attempt, 1.0)))
        return 0

    def results(self, batch_id: str) -> Iterator[dict[str, Any]]:
        """Result items in input order."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :line)",
            "ExpressionAttributeValues": {":pk": {"S": f"BATCH#{batch_id}"}, ":line": {"S": "LINE#"}},
            "ConsistentRead": True,
        }
        while True:
            page = self.client.query(**kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # --- assembly --------------------------------------------------------------------------------

    def claim_assembly(self, batch_id: str, token: str, lease_s: int) -> bool:
        """True for exactly one caller once every line is counted (or once a stale claim expired)."""
        now = time.time()
        try:
            self.client.update_item(
                TableName=self._table,
                Key=batch_key(batch_id),
                UpdateExpression="SET assembler = :token, assembler_until = :until",
                ConditionExpression=(
                    "#status = :in_progress AND #done = #total "
                    "AND (attribute_not_exists(assembler_until) OR assembler_until < :now)"
                ),
                ExpressionAttributeNames={"#status": "status", "#total": "total", "#done": "done"},
                ExpressionAttributeValues={
                    ":in_progress": {"S": "in_progress"},
                    ":token": {"S": token},
                    ":until": {"N": repr(now + lease_s)},
                    ":now": {"N": repr(now)},
                },
            )
        except Exception as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def complete(self, batch_id: str, token: str) -> BatchJob:
        item = self.client.update_item(
            TableName=self._table,
            Key=batch_key(batch_id),
            UpdateExpression="SET #status = :completed, completed_at = :now REMOVE assembler, assembler_until",
            ConditionExpression="assembler = :token",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":completed": {"S": "completed"},
                ":now": {"N": repr(time.time())},
                ":token": {"S": token},
            },
            ReturnValues="ALL_NEW",
        )["Attributes"]
        return job_from_item(item)

    # --- listing ---------------------------------------------------------------------------------

    def list(
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
            batch_id = after.partition("#")[2]
            kwargs["ExclusiveStartKey"] = {
                **batch_key(batch_id),
                "gsi2pk": {"S": _LIST_PARTITION},
                "gsi2sk": {"S": after},
            }
        jobs: list[BatchJob] = []
        cursor: str | None = None
        for _ in range(10):  # a filtered page can be short: read on, a few pages at most
            page = self.client.query(**kwargs)
            jobs.extend(job_from_item(item) for item in page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            cursor = last["gsi2sk"]["S"] if last else None
            if cursor is None or len(jobs) >= limit:
                break
            kwargs["ExclusiveStartKey"] = last
        if len(jobs) > limit:
            jobs = jobs[:limit]
            cursor = f"{int(jobs[-1].created_at * 1_000_000):017d}#{jobs[-1].id}"
        return jobs, cursor
