"""The output file, written once: by the worker whose count completes the batch.

Completion is decided by the counter (`done == total`), and a conditional claim on it makes sure only
one caller assembles even when several look at the same moment (the last worker, the splitter, a
redelivery). A claim expires after a lease: if its holder dies, the redelivery of its message (or a
repeated S3 event) assembles instead. Writing the same output key again is harmless.

Besides the output file (every line, in input order), the lines are split as OpenAI splits them:
successes into `batches/results/{id}/output.jsonl`, failures into `.../errors.jsonl` (the batch's
`output_file_id` and `error_file_id`; a file with no line is not written, and its id is null).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from handler.batch.jobs import ERROR_FILE, OUTPUT_FILE, BatchTable, Counts
from handler.batch.objects import Blobs
from handler.observability import logger

RESULTS_PREFIX = "batches/results/"


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
    oks: list[bool] = []
    written = blobs.write_lines(job.output_key, _output_lines(table, blobs, batch_id, oks))
    if written != counts.total:
        raise RuntimeError(f"batch {batch_id}: {written} result lines for {counts.total} input lines")
    files = _split(blobs, batch_id, job.output_key, oks)
    table.complete(batch_id, token, counts, files, job.project)
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


def results_key(batch_id: str, which: str) -> str:
    return f"{RESULTS_PREFIX}{batch_id}/{which}.jsonl"


def _split(blobs: Blobs, batch_id: str, output_key: str, oks: list[bool]) -> dict[str, tuple[str, int]]:
    """The output file read back once per kind, streamed: `{kind: (key, bytes)}` for the kinds present."""
    files: dict[str, tuple[str, int]] = {}
    for which, wanted in ((OUTPUT_FILE, True), (ERROR_FILE, False)):
        if wanted not in oks:
            continue
        size = [0]

        def pick(wanted: bool = wanted, size: list[int] = size) -> Iterator[bytes]:
            for ok, line in zip(oks, blobs.lines(output_key), strict=False):
                if ok is wanted:
                    size[0] += len(line) + 1
                    yield line

        key = results_key(batch_id, which)
        blobs.write_lines(key, pick())
        files[which] = (key, size[0])
    return files


def _output_lines(table: BatchTable, blobs: Blobs, batch_id: str, oks: list[bool]) -> Iterator[bytes]:
    for expected, item in enumerate(table.results(batch_id)):
        if int(item["sk"]["S"].removeprefix("LINE#")) != expected:
            raise RuntimeError(f"batch {batch_id}: line {expected} has no result")
        oks.append(bool(item.get("ok", {}).get("BOOL", False)))
        if "part" in item:
            yield blobs.get(item["part"]["S"]).rstrip(b"\n")
        else:
            yield item["line"]["S"].encode()
