"""`make batch FILE=requests.jsonl [OUT=path]`: run a batch file through the real pipeline, locally.

The file is uploaded to the emulated bucket (moto, in-process), the S3 event goes to BatchFunction's
handler, and the queue is drained into the same handler the way Lambda's SQS poller would (ten
messages per invocation, failed ones retried, the last receive turning a stuck line into an error
line). A progress bar follows the batch record's counters; the output file is saved locally.

    python -m gatewayctl batch FILE.jsonl [--out PATH] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gatewayctl.local.context import LambdaContext as _Context

SOURCE_TREE = Path(__file__).resolve().parents[3]  # the repository (tools/gatewayctl/local/..)

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class LambdaContext(_Context):
    """BatchFunction's context (its remaining time decides when in-progress work is given up)."""

    def __init__(self, timeout_ms: int = 900_000) -> None:
        super().__init__("chat-gateway-batch-local", timeout_ms)


def s3_event(bucket: str, key: str, etag: str, size: int, sequencer: str) -> dict[str, Any]:
    """The event S3 sends for an uploaded object (the shape of events/s3_put.json)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:LOCAL"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "LOCAL", "x-amz-id-2": "LOCAL"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "BatchInput",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "LOCAL"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {"key": key, "size": size, "eTag": etag.strip('"'), "sequencer": sequencer},
                },
            }
        ]
    }


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS poller builds from `ReceiveMessage` results."""
    records = []
    for m in messages:
        attributes = {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(int(time.time() * 1000)),
            "SenderId": "LOCAL",
            "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
            **m.get("Attributes", {}),
        }
        message_attributes = {
            name: {
                "stringValue": value.get("StringValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
            for name, value in m.get("MessageAttributes", {}).items()
        }
        records.append(
            {
                "messageId": m["MessageId"],
                "receiptHandle": m.get("ReceiptHandle", "local"),
                "body": m["Body"],
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
        )
    return {"Records": records}


class Pipeline:
    """Drives BatchFunction's handler like S3 notifications and Lambda's SQS poller would."""

    def __init__(self, handler: Handler, bucket: str, queue_url: str, sqs: Any, s3: Any) -> None:
        self.handler = handler
        self.bucket = bucket
        self.queue_url = queue_url
        self.sqs = sqs
        self.s3 = s3
        self.queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.events: list[dict[str, Any]] = []  # every SQS event delivered, for replays
        self.failures = 0
        self._lock = threading.Lock()

    def upload(self, data: bytes, key: str) -> dict[str, Any]:
        """Put the file and deliver its S3 event; returns the handler's answer."""
        etag = self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)["ETag"]
        event = s3_event(self.bucket, key, etag, len(data), f"{time.time_ns():X}")
        return self.handler(event, LambdaContext())

    def poll_once(self) -> int:
        """One invocation with up to ten messages; failed ones become visible again at once."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=60,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        event = sqs_event(messages, self.queue_arn)
        with self._lock:
            self.events.append(event)
        response = self.handler(event, LambdaContext())
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(done[start : start + 10])
                ],
            )
        for m in messages:
            if m["MessageId"] in failed:
                with self._lock:
                    self.failures += 1
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                )
        return len(messages)

    def drain(self, finished: Callable[[], bool], workers: int = 1, timeout_s: float = 600) -> None:
        """Poll from `workers` threads until `finished()` (or the timeout)."""
        deadline = time.monotonic() + timeout_s

        def loop() -> None:
            while not finished():
                if time.monotonic() > deadline:
                    raise TimeoutError("the batch did not finish in time")
                if not self.poll_once():
                    time.sleep(0.02)

        if workers == 1:
            loop()
            return
        with ThreadPoolExecutor(workers) as pool:
            for future in [pool.submit(loop) for _ in range(workers)]:
                future.result()


def run(path: Path, out: Path, workers: int, progress: bool = True) -> tuple[dict[str, Any], Pipeline]:
    """Upload, split, drain, download (inside an emulation): the batch's final record, and the
    pipeline that ran it (its `events` are every SQS event it delivered, for replays)."""
    import boto3

    from handler.entrypoints.batch import lambda_handler
    from handler.wiring import default_batch_runtime as runtime

    rt = runtime()
    session = boto3.session.Session()
    pipeline = Pipeline(
        lambda_handler, rt.blobs.bucket, rt.queue.url, session.client("sqs"), session.client("s3")
    )
    key = f"batches/input/{path.stem}.jsonl"
    started = pipeline.upload(path.read_bytes(), key)
    batch_id = started["batches"][0]["id"]

    bar: Any = None
    stop = threading.Event()
    ticker: threading.Thread | None = None
    if progress:
        from tqdm import tqdm

        # The total from the start (every line is one request), live completed / failed counts from
        # a thread of its own: the drain loop only looks between invocations of ten messages.
        total = started["batches"][0].get("total") or _count_lines(path)
        bar = tqdm(total=total, unit="req", desc=path.name, file=sys.stderr, mininterval=0.1)
        bar.set_postfix(completed=0, failed=0)

        def tick() -> None:
            while not stop.wait(0.1):
                _show(bar, rt.table.get(batch_id))

        ticker = threading.Thread(target=tick, name="batch-progress", daemon=True)
        ticker.start()
    last_check = [0.0]

    def finished() -> bool:
        now = time.monotonic()
        if now - last_check[0] < 0.1:
            return False
        last_check[0] = now
        job = rt.table.get(batch_id)
        return job is None or job.status in ("completed", "failed", "cancelled")

    t0 = time.perf_counter()
    try:
        pipeline.drain(finished, workers)
    finally:
        stop.set()
        if ticker is not None:
            ticker.join()
    if bar is not None:
        _show(bar, rt.table.get(batch_id))
        bar.close()
    job = rt.table.get(batch_id)
    if job is None:
        raise RuntimeError(f"batch {batch_id} disappeared")
    if job.status == "completed":
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(rt.blobs.get(job.output_key))
    result = {
        **job.public(),
        "seconds": round(time.perf_counter() - t0, 2),
        "retried_messages": pipeline.failures,
    }
    return result, pipeline


def _count_lines(path: Path) -> int:
    with path.open("rb") as f:
        data = f.read()
    return data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)


def _show(bar: Any, job: Any) -> None:
    if job is None:
        return
    if job.total:
        bar.total = job.total
    bar.set_postfix(completed=job.completed, failed=job.failed, refresh=False)
    bar.update(job.done - bar.n)


def default_output(path: Path) -> Path:
    """Beside the input, unless the input is in this repository (`make batch FILE=events/...`): then
    in the temp directory, so that no output is ever left untracked in the source tree."""
    resolved = path.resolve()
    if resolved.is_relative_to(SOURCE_TREE):
        return Path(tempfile.gettempdir()) / "chat-gateway-batches" / f"{path.stem}.output.jsonl"
    return path.with_name(f"{path.stem}.output.jsonl")


def report(result: dict[str, Any], out: Path, bucket: str) -> str:
    """What the command prints: the counts, and where the output is."""
    counts = result["request_counts"]
    if result["status"] != "completed":
        return f"batch {result['id']} {result['status']}: {result.get('error')}"
    return (
        f"batch {result['id']} completed in {result['seconds']} s: {counts['total']} lines, "
        f"{counts['completed']} completed, {counts['failed']} failed\n"
        f"output: s3://{bucket}/{result['output_key']} (emulated) -> saved to {out}"
    )


@contextmanager
def _environment(values: dict[str, str], drop: tuple[str, ...] = ()) -> Iterator[None]:
    """Set environment variables for the run, and put everything back afterwards."""
    saved = dict(os.environ)
    for name in drop:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gatewayctl batch", description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="a JSONL file in the OpenAI batch format")
    parser.add_argument(
        "--out",
        type=Path,
        help="where to save the output (default: FILE.output.jsonl beside FILE, or in the temp "
        "directory for a FILE inside this repository)",
    )
    parser.add_argument("--workers", type=int, default=2, help="concurrent invocations (default 2)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if not args.file.is_file():
        parser.error(f"{args.file}: no such file")
    out: Path = args.out or default_output(args.file)

    from moto import mock_aws

    from gatewayctl.local.bootstrap import serialise_moto_dynamodb_writes

    serialise_moto_dynamodb_writes()

    from gatewayctl.local.bootstrap import LOCAL_ENV, create_resources, load_configs

    env = {
        **LOCAL_ENV,
        "AUTH_MODE": os.environ.get("AUTH_MODE", "dev"),
        # Per-request logs and EMF metrics would bury the progress bar.
        "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
        "POWERTOOLS_METRICS_DISABLED": os.environ.get("POWERTOOLS_METRICS_DISABLED", "true"),
    }
    with _environment(env, drop=("AWS_ENDPOINT_URL",)), mock_aws():
        import boto3

        from handler import aws, wiring  # after the environment: the logger reads its level on import

        session = boto3.session.Session()
        os.environ.update(create_resources(session, dict(LOCAL_ENV)))
        load_configs(session, Path(os.environ.get("CONFIG_DIR", "config")), LOCAL_ENV["CONFIG_PREFIX"])
        aws.reset_clients()
        wiring.reset()
        try:
            result, _ = run(args.file, out, args.workers, progress=not args.no_progress)
        finally:
            aws.reset_clients()
            wiring.reset()
    text = report(result, out, LOCAL_ENV["BUCKET_NAME"])
    if result["status"] != "completed":
        print(text, file=sys.stderr)
        return 1
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
