"""Uploaded batch input files (OpenAI's Files API, `purpose: "batch"`), one item each in the table.

```
file  pk=FILE#{id}  sk=FILE  project, filename, purpose, bytes, created_at, key (the S3 object)
```
The object lives under `batches/files/{project}/{id}.jsonl`: a file belongs to one project, and
`POST /api/v1/batches` only starts a batch on a key under the caller's project. (Not under
`batches/input/`, where an upload would start an S3-drop batch by itself.)
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field

from handler.aws import LazyClient
from handler.store.dynamo import DynamoClient, Item

FILES_PREFIX = "batches/files/"


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


def _key(file_id: str) -> Item:
    return {"pk": {"S": f"FILE#{file_id}"}, "sk": {"S": "FILE"}}


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
        }
        if record.bytes is not None:
            item["bytes"] = {"N": str(record.bytes)}
        self.client.put_item(TableName=self._table, Item=item)

    def get(self, file_id: str) -> FileRecord | None:
        item = self.client.get_item(TableName=self._table, Key=_key(file_id), ConsistentRead=True).get("Item")
        if item is None:
            return None
        return FileRecord(
            id=item["id"]["S"],
            project=item["project"]["S"],
            filename=item["filename"]["S"],
            purpose=item["purpose"]["S"],
            key=item["key"]["S"],
            bytes=int(item["bytes"]["N"]) if "bytes" in item else None,
            created_at=float(item["created_at"]["N"]),
        )

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
