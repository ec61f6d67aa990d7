"""The output file, written once: by the worker whose count completes the batch.

Completion is decided by the counter (`done == total`), and a conditional claim on it makes sure only
one caller assembles even when several look at the same moment (the last worker, the splitter, a
redelivery). A claim expires after a lease: if its holder dies, the redelivery of its message (or a
repeated S3 event) assembles instead. Writing the same output key again is harmless.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from handler.batch.jobs import BatchTable, Counts
from handler.batch.objects import Blobs
from handler.observability import logger


def maybe_assemble(
    table: BatchTable, blobs: Blobs, batch_id: str, lease_s: int, counts: Counts | None = None
) -> bool:
    """Assemble when every line is counted and this caller wins the claim; else do nothing."""
    if counts is None:
        counts = table.counts(batch_id)
    if not counts.all_done or counts.assembled:
        return False
    token = str(uuid.uuid4())
    if not table.claim_assembly(batch_id, token, lease_s):
        return False
    job = table.get(batch_id)
    if job is None:
        raise RuntimeError(f"batch {batch_id}: the counter has no batch record")
    written = blobs.write_lines(job.output_key, _output_lines(table, blobs, batch_id))
    if written != counts.total:
        raise RuntimeError(f"batch {batch_id}: {written} result lines for {counts.total} input lines")
    table.complete(batch_id, token, counts)
    logger.info(
        "batch completed",
        extra={
            "batch_id": batch_id,
            "output_key": job.output_key,
            "lines": written,
            "completed": counts.completed,
            "failed": counts.failed,
        },
    )
    return True


def _output_lines(table: BatchTable, blobs: Blobs, batch_id: str) -> Iterator[bytes]:
    for expected, item in enumerate(table.results(batch_id)):
        if int(item["sk"]["S"].removeprefix("LINE#")) != expected:
            raise RuntimeError(f"batch {batch_id}: line {expected} has no result")
        if "part" in item:
            yield blobs.get(item["part"]["S"]).rstrip(b"\n")
        else:
            yield item["line"]["S"].encode()
