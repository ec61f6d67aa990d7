"""`FileTable.page`: a project's files by a Query of its partitions (one per purpose), merged in
time order, reading a bounded number of items however many files there are."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from handler.batch.files import PURPOSES, FileRecord, FileTable, batch_file, file_key


class _Counting:
    """The DynamoDB client, counting what the table's listing reads (and refusing a Scan)."""

    def __init__(self) -> None:
        self.inner = boto3.client("dynamodb")
        self.items_read = 0
        self.queries = 0

    def get_paginator(self, name: str) -> Any:
        assert name == "query"
        paginator = self.inner.get_paginator(name)
        outer = self

        class _Paginator:
            def paginate(self, **params: Any) -> Any:
                assert params["IndexName"] == "GSI2"
                for page in paginator.paginate(**params):
                    outer.queries += 1
                    outer.items_read += len(page.get("Items", []))
                    yield page

        return _Paginator()

    def scan(self, **params: Any) -> Any:
        raise AssertionError("a listing never scans")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _put(table: FileTable, project: str, n: int, start: float) -> list[FileRecord]:
    records = [
        FileRecord(
            id=f"file-{project}{i:04d}",
            project=project,
            filename="x.jsonl",
            key=file_key(project, f"file-{i}"),
            bytes=1,
            created_at=start + i,
        )
        for i in range(n)
    ]
    for record in records:
        table.put(record)
    return records


@pytest.mark.usefixtures("aws")
def test_a_page_reads_a_bounded_number_of_items() -> None:
    client = _Counting()
    table = FileTable("chat-gateway", client)  # type: ignore[arg-type]
    demo = _put(table, "demo", 60, 1000.0)
    _put(table, "lab", 5, 1000.5)
    table.put(batch_file("b1", "output", "demo", "batches/results/b1/output.jsonl", 9, 1030.25))

    records, more = table.page(["demo"], PURPOSES, 3)
    assert [r.id for r in records] == [demo[-1].id, demo[-2].id, demo[-3].id] and more
    assert client.items_read <= 2 * (3 + 1)  # limit + 1 from each of the two partitions at most

    records, more = table.page(["demo"], ("batch_output",), 10)
    assert [r.id for r in records] == ["file-batch-b1-output"] and not more

    client.items_read = 0
    records, more = table.page(["demo"], PURPOSES, 10_000, after=demo[30].sort_key)
    assert [r.id for r in records][:2] == [demo[29].id, demo[28].id] and len(records) == 30 and not more
    assert client.items_read == 30  # only what lies after the cursor

    records, more = table.page(["demo", "lab"], ("batch",), 100, ascending=True)
    assert len(records) == 65 and not more
    assert [r.created_at for r in records] == sorted(r.created_at for r in records)
    assert records[1].project == "lab"  # 1000.5: between demo's first two
