"""The output file, written once: by the one worker that claims it after the last line is counted.

The claim is a conditional write (`done = total` and nobody holds a live claim), so among workers
that finish at the same moment exactly one assembles. A claim expires after a lease: if its holder
dies, the redelivery of its message assembles instead. Writing the same output key again is harmless.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from handler.batch.jobs import BatchJob, BatchTable
from handler.batch.objects import Blobs
from handler.observability import logger


def maybe_assemble(table: BatchTable, blobs: Blobs, batch_id: str, lease_s: int) -> BatchJob | None:
    """Assemble when every line is done and this caller wins the claim; else do nothing."""
    job = table.get(batch_id)
    if job is None or not job.all_done:
        return None
    token = str(uuid.uuid4())
    if not table.claim_assembly(batch_id, token, lease_s):
        return None
    written = blobs.write_lines(job.output_key, _output_lines(table, blobs, job))
    if written != job.total:
        raise RuntimeError(f"batch {batch_id}: {written} result lines for {job.total} input lines")
    done = table.complete(batch_id, token)
    logger.info(
        "batch completed",
        extra={"batch_id": batch_id, "output_key": job.output_key, "completed": done.completed, "failed": done.failed},
    )
    return done


def _output_lines(table: BatchTable, blobs: Blobs, job: BatchJob) -> Iterator[bytes]:
    expected = 0
    for item in table.results(job.id):
        index = int(item["sk"]["S"].removeprefix("LINE#"))
        if index != expected:
            raise RuntimeError(f"batch {job.id}: line {expected} has no result")
        expected += 1
        if "part" in item:
            yield blobs.get(item["part"]["S"]).rstrip(b"\n")
        else:
            yield item["line"]["S"].encode()
