"""Files (OpenAI's Files API), one item each in the table: uploaded batch input (`purpose: "batch"`)
and, once a batch has written them, its output and error files (`purpose: "batch_output"`).

```
file  pk=FILE#{id}  sk=FILE  project, filename, purpose, bytes, created_at, key (the S3 object);
                             gsi2pk=FILES#{project}#{purpose}  gsi2sk={created_us}#{id}
```
The object lives under `batches/files/{project}/{id}.jsonl`: a file belongs to one project, and
`POST /api/v1/batches` only starts a batch on a key under the caller's project. (Not under
`batches/input/`, where an upload would start an S3-drop batch by itself.) A batch's output files
stay under `batches/results/`; their item is only what lists them (the batch record answers a read).

`page` lists a project's files by a Query of its GSI2 partitions, one per purpose (so a purpose
filter reads only its own items, and no page comes back short), merged in time order.
"""

from __future__ import annotations

import heapq
import itertools
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from pydantic import BaseModel, Field

from handler.aws import LazyClient
from handler.store.dynamo import DynamoClient, Item, query_items, time_key

FILES_PREFIX = "batches/files/"
#: What this gateway stores: uploaded batch input, and the files a batch writes.
PURPOSES = ("batch", "batch_output")
_QUERY_PAGE = 1000  # items per Query call of a listing (a page of `limit` reads limit + 1 at most)


def new_file_id() -> str:
    return f"file-{uuid.uuid4().hex}"


def file_key(project: str, file_id: str) -> str:
    return f"{FILES_PREFIX}{project}/{file_id}.jsonl"


class FileRecord(BaseModel):
    id: str
    project: str
    filename: str
    purpose: str = "batch"
    key: str
    bytes: int | None = None  # None until a presigned upload has arrived
    created_at: float = Field(default_factory=time.time)

    @property
    def status(self) -> Literal["uploaded", "processed"]:
        return "processed" if self.bytes is not None else "uploaded"

    @property
    def sort_key(self) -> str:
        """Where the file sits in its project's listing: by creation time, then id."""
        return time_key(self.created_at, self.id)

    def public(self) -> dict[str, Any]:
        """OpenAI's `file` object (plus the project it belongs to)."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes or 0,
            "created_at": int(self.created_at),
            "filename": self.filename,
            "purpose": self.purpose,
            "status": self.status,
            "project": self.project,
        }


def batch_file_id(batch_id: str, which: str) -> str:
    """The file id of a batch's output (`which="output"`) or error (`"errors"`) file."""
    return f"file-batch-{batch_id}-{which}"


def batch_file(batch_id: str, which: str, project: str, key: str, size: int, at: float) -> FileRecord:
    """A batch's output or error file: its listing item (written at assembly), and the object
    `GET /api/v1/files/{id}` builds from the batch record."""
    return FileRecord(
        id=batch_file_id(batch_id, which),
        project=project,
        filename=f"{batch_id}_{which}.jsonl",
        purpose="batch_output",
        key=key,
        bytes=size,
        created_at=at,
    )


def _key(file_id: str) -> Item:
    return {"pk": {"S": f"FILE#{file_id}"}, "sk": {"S": "FILE"}}


def _partition(project: str, purpose: str) -> str:
    return f"FILES#{project}#{purpose}"


def _record(item: Item) -> FileRecord:
    return FileRecord(
        id=item["id"]["S"],
        project=item["project"]["S"],
        filename=item["filename"]["S"],
        purpose=item["purpose"]["S"],
        key=item["key"]["S"],
        bytes=int(item["bytes"]["N"]) if "bytes" in item else None,
        created_at=float(item["created_at"]["N"]),
    )


class FileTable:
    def __init__(self, table_name: str, client: DynamoClient | None = None) -> None:
        self._table = table_name
        self._client = client

    client = LazyClient("dynamodb")

    def put(self, record: FileRecord) -> None:
        item: Item = {
            **_key(record.id),
            "type": {"S": "file"},
            "id": {"S": record.id},
            "project": {"S": record.project},
            "filename": {"S": record.filename},
            "purpose": {"S": record.purpose},
            "key": {"S": record.key},
            "created_at": {"N": repr(record.created_at)},
            "gsi2pk": {"S": _partition(record.project, record.purpose)},
            "gsi2sk": {"S": record.sort_key},
        }
        if record.bytes is not None:
            item["bytes"] = {"N": str(record.bytes)}
        self.client.put_item(TableName=self._table, Item=item)

    def get(self, file_id: str) -> FileRecord | None:
        item = self.client.get_item(TableName=self._table, Key=_key(file_id), ConsistentRead=True).get("Item")
        return None if item is None else _record(item)

    def set_bytes(self, file_id: str, size: int) -> None:
        self.client.update_item(
            TableName=self._table,
            Key=_key(file_id),
            UpdateExpression="SET #bytes = :bytes",
            ExpressionAttributeNames={"#bytes": "bytes"},
            ExpressionAttributeValues={":bytes": {"N": str(size)}},
        )

    def delete(self, file_id: str) -> None:
        self.client.delete_item(TableName=self._table, Key=_key(file_id))

    def page(
        self,
        projects: Iterable[str],
        purposes: Iterable[str],
        limit: int,
        *,
        after: str | None = None,
        ascending: bool = False,
    ) -> tuple[list[FileRecord], bool]:
        """Up to `limit` files of `projects` with one of `purposes`, newest first (or oldest first),
        after the sort key `after` (`FileRecord.sort_key`); and whether there are more.

        One Query per (project, purpose) partition, read lazily in pages of at most `limit + 1`
        items and merged: the call reads at most `limit + 1` items plus one page per partition."""
        partitions = [_partition(p, purpose) for p in sorted(set(projects)) for purpose in purposes]
        streams = [self._partition_items(pk, limit + 1, after, ascending) for pk in partitions]
        merged = heapq.merge(*streams, key=lambda item: str(item["gsi2sk"]["S"]), reverse=not ascending)
        items = list(itertools.islice(merged, limit + 1))
        return [_record(item) for item in items[:limit]], len(items) > limit

    def _partition_items(self, pk: str, most: int, after: str | None, ascending: bool) -> Iterator[Item]:
        condition = "gsi2pk = :pk"
        values: dict[str, Any] = {":pk": {"S": pk}}
        if after is not None:
            condition += f" AND gsi2sk {'>' if ascending else '<'} :after"
            values[":after"] = {"S": after}
        yield from query_items(
            self.client,
            TableName=self._table,
            IndexName="GSI2",
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ScanIndexForward=ascending,
            Limit=min(most, _QUERY_PAGE),
        )
