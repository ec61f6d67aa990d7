"""`make invoke EVENT=events/….json`: run a Lambda handler in-process on an event file, against the
embedded AWS emulation, and print the Lambda response. What `sam local invoke` does, without Docker.

    python -m gatewayctl invoke EVENT.json [EVENT.json ...]

The handler is chosen by the event's shape: API Gateway (REST v1, HTTP API v2, Function URL) ->
ApiFunction; S3 / SQS batch events -> BatchFunction; SQS events from the store-retry queue ->
StoreRetryFunction.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from gatewayctl.local.context import LambdaContext

__all__ = ["LambdaContext", "handler_for", "invoke", "main"]


def handler_for(event: dict[str, Any]) -> str:
    records = event.get("Records") or []
    if records:
        source = records[0].get("eventSource") or records[0].get("EventSource")
        if source == "aws:sqs" and "store-retry" in records[0].get("eventSourceARN", ""):
            return "handler.entrypoints.store_retry.lambda_handler"
        if source in ("aws:s3", "aws:sqs"):
            return "handler.entrypoints.batch.lambda_handler"
    if "httpMethod" in event or "http" in event.get("requestContext", {}):
        return "handler.entrypoints.http.lambda_handler"
    raise SystemExit("unrecognised event: expected an API Gateway, S3 or SQS event")


def invoke(event: dict[str, Any]) -> Any:
    module_name, _, attr = handler_for(event).rpartition(".")
    handler = getattr(importlib.import_module(module_name), attr)
    return handler(event, LambdaContext())


def _pretty(response: Any) -> str:
    if isinstance(response, dict) and isinstance(response.get("body"), str):
        with contextlib.suppress(ValueError):
            response = {**response, "body": json.loads(response["body"])}
    return json.dumps(response, indent=2)


def main(argv: list[str]) -> int:
    """Only the Lambda responses go to stdout: logs and EMF metric lines (which Lambda would send to
    CloudWatch) go to stderr, so that `make invoke ... | jq` works."""
    if not argv:
        print("usage: python -m gatewayctl invoke EVENT.json [EVENT.json ...]", file=sys.stderr)
        return 2
    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        return _run(argv, out)


def _run(argv: list[str], out: Any) -> int:
    from moto import mock_aws

    from gatewayctl.local.bootstrap import serialise_moto_dynamodb_writes

    serialise_moto_dynamodb_writes()

    from gatewayctl.local.bootstrap import LOCAL_ENV, create_resources, load_configs

    os.environ.update(LOCAL_ENV)
    os.environ.setdefault("AUTH_MODE", "dev")
    os.environ.pop("AWS_ENDPOINT_URL", None)
    with mock_aws():
        import boto3

        session = boto3.session.Session()
        os.environ.update(create_resources(session, dict(LOCAL_ENV)))
        load_configs(session, Path(os.environ.get("CONFIG_DIR", "config")), LOCAL_ENV["CONFIG_PREFIX"])
        from handler import aws, wiring

        aws.reset_clients()
        wiring.reset()  # the settings are read afresh, from the environment set above
        for path in argv:  # several events share one emulation: store, then look up
            event = json.loads(Path(path).read_text())
            print(f"# {path} -> {handler_for(event)}", file=sys.stderr)
            if _is_batch_upload(event):
                _run_batch_upload(event, Path(path).parent, out)
            else:
                print(_pretty(invoke(event)), file=out, flush=True)
    return 0


def _is_batch_upload(event: dict[str, Any]) -> bool:
    records = event.get("Records") or [{}]
    return bool(records[0].get("eventSource") == "aws:s3")


def _run_batch_upload(event: dict[str, Any], events_dir: Path, out: Any) -> None:
    """What the stack does with an upload: the input file (`events/<name>.jsonl`, beside the
    event) is put in the bucket, the S3 event is delivered, and the queue is drained through the
    same handler as Lambda's SQS poller would; then the output file is printed."""
    from gatewayctl.local.batch import Pipeline
    from handler import aws
    from handler.entrypoints.batch import lambda_handler
    from handler.settings import get_settings

    key = event["Records"][0]["s3"]["object"]["key"]
    source = events_dir / Path(key).name
    if not source.is_file():
        raise SystemExit(f"{source} is missing: it is uploaded as {key} before the event")
    session = aws.boto3_session()
    settings = get_settings()
    bucket, queue_url = settings.bucket_name or "", settings.batch_queue_url or ""
    s3 = session.client("s3")
    pipeline = Pipeline(lambda_handler, bucket, queue_url, session.client("sqs"), s3)
    s3.put_object(Bucket=bucket, Key=key, Body=source.read_bytes())
    print(_pretty(invoke(event)), file=out, flush=True)
    output_key = key.replace("batches/input/", "batches/output/", 1)

    def finished() -> bool:
        return "Contents" in s3.list_objects_v2(Bucket=bucket, Prefix=output_key)

    pipeline.drain(finished, timeout_s=120)
    print(f"# s3://{bucket}/{output_key}", file=sys.stderr)
    print(s3.get_object(Bucket=bucket, Key=output_key)["Body"].read().decode(), end="", file=out, flush=True)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
