"""The S3-triggered step: read the input file once, check each line, queue the lines a few per message.

It never calls a model: a 100,000-line file is read and queued in well under a minute (see the
README's batch numbers), and the workers do the rest in parallel. Lines that cannot become a request
are queued too (as errors), so that every line is counted and answered the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from handler.batch.assemble import maybe_assemble
from handler.batch.jobs import BatchJob, BatchTable, Counts
from handler.batch.lines import LineChecker, Packer, Work, model_project, stable_uuid
from handler.batch.objects import KIND_LINES, Blobs, InputUnavailable, WorkQueue
from handler.observability import logger
from handler.settings import Settings

INPUT_PREFIX = "batches/input/"
OUTPUT_PREFIX = "batches/output/"
PARTS_PREFIX = "batches/parts/"


def output_key_for(input_key: str) -> str:
    """`batches/input/a/b.jsonl` -> `batches/output/a/b.jsonl`; any other key -> its file name."""
    name = (
        input_key[len(INPUT_PREFIX) :] if input_key.startswith(INPUT_PREFIX) else input_key.rsplit("/", 1)[-1]
    )
    name = name.removesuffix(".jsonl")
    return f"{OUTPUT_PREFIX}{name}.jsonl"


def batch_id_for_object(bucket: str, key: str, version: str) -> str:
    """One batch per uploaded object version: a repeated S3 event finds the batch it started."""
    return str(stable_uuid("s3", bucket, key, version))


class Splitter:
    def __init__(
        self, table: BatchTable, blobs: Blobs, queue: WorkQueue, settings: Settings, max_line_bytes: int
    ) -> None:
        self.table = table
        self.blobs = blobs
        self.queue = queue
        self.settings = settings
        self.max_line_bytes = max_line_bytes

    def on_object_created(self, bucket: str, key: str, etag: str | None, sequencer: str | None) -> str | None:
        """Start (or, for a repeated event, resume) the batch of an uploaded input file: its id."""
        if not key.startswith(INPUT_PREFIX) or not key.endswith(".jsonl"):
            logger.info("object ignored: not a batch input", extra={"key": key})
            return None
        if bucket != self.blobs.bucket:
            logger.warning("object ignored: not the stack's bucket", extra={"bucket": bucket, "key": key})
            return None
        job = self.new_job(
            id=batch_id_for_object(bucket, key, sequencer or etag or ""),
            source="s3",
            input_key=key,
            output_key=output_key_for(key),
            input_etag=etag,
        )
        if not self.table.create(job):
            existing = self.table.get(job.id)
            if existing is None:
                return None
            logger.info("repeated S3 event", extra={"batch_id": job.id, "status": existing.status})
            job = existing
        self.resume(job)
        return job.id

    def resume(self, job: BatchJob) -> None:
        """Split a `validating` job (again, if an earlier attempt stopped while queueing: workers
        dedupe); then assemble if every line is done already (a tiny file, or an assembler that died).
        """
        counts = None
        if job.status == "validating" or (job.status == "cancelling" and job.total is None):
            # (A batch cancelled before its split is split all the same: its lines end as cancelled.)
            counts = self.split(job)
            if counts is None:
                return
        if job.status in ("validating", "in_progress", "cancelling"):
            maybe_assemble(self.table, self.blobs, job.id, self.settings.batch_assembly_lease_s, counts)

    def new_job(self, **fields: Any) -> BatchJob:
        return BatchJob(
            lines_per_message=self.settings.batch_lines_per_message,
            message_bytes=self.settings.batch_message_bytes,
            **fields,
        )

    def split(self, job: BatchJob) -> Counts | None:
        """Queue every line of the job's input; then the job is `in_progress` with its total.

        Returns the counter after the total was set (every line may be done already), or None when
        the batch failed as a whole.
        """
        logger.info("batch splitting", extra={"batch_id": job.id, "input_key": job.input_key})
        state: dict[str, Any] = {"total": 0, "project": job.project}
        try:
            sent = self.queue.send_batches(
                self._messages(job, state), KIND_LINES, self.settings.batch_send_threads
            )
        except InputUnavailable as exc:
            self.table.fail(job.id, str(exc))
            logger.warning("batch failed", extra={"batch_id": job.id, "error": str(exc)})
            return None
        if state["total"] == 0:
            self.table.fail(job.id, "the input file has no lines")
            return None
        counts = self.table.start(job.id, state["total"], state["project"])
        logger.info("batch queued", extra={"batch_id": job.id, "lines": state["total"], "messages": sent})
        return counts

    def _messages(self, job: BatchJob, state: dict[str, Any]) -> Iterator[dict[str, Any]]:
        checker = LineChecker()
        packer = Packer(job.lines_per_message, job.message_bytes)
        seq = 0
        for work in self._works(job, state, checker):
            state["total"] = work.index + 1
            full = packer.add(work.to_wire())
            if full:
                yield {"batch_id": job.id, "seq": seq, "project": state["project"], "lines": full}
                seq += 1
        last = packer.flush()
        if last:
            yield {"batch_id": job.id, "seq": seq, "project": state["project"], "lines": last}

    def _works(self, job: BatchJob, state: dict[str, Any], checker: LineChecker) -> Iterator[Work]:
        """Every line as work, in order. A blank line is a line too (its own error line, so that output
        lines match input lines), but a file of nothing but blank lines has no lines at all."""
        blanks: list[Work] = []
        requests = False
        for index, raw in enumerate(self.blobs.lines(job.input_key, job.input_etag)):
            if index == 0 and raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark (some editors)
                raw = raw[3:]
            if not raw.strip():
                blanks.append(
                    Work(index, error=("empty_line", "line is blank; every line must be a request"))
                )
                continue
            if len(raw) > self.max_line_bytes:
                work = Work(index, error=("payload_too_large", f"line exceeds {self.max_line_bytes} bytes"))
            else:
                work = checker.check(index, raw)
            if work.body is not None:
                if state["project"] is None:
                    state["project"] = model_project(work.body)
                if len(raw) > self.settings.batch_inline_bytes:
                    work.part = f"{PARTS_PREFIX}{job.id}/in-{index:09d}.json"
                    self.blobs.put(work.part, raw)
                    work.body = None
            yield from blanks
            blanks.clear()
            requests = True
            yield work
        if requests:
            yield from blanks
