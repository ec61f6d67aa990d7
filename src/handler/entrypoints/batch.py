"""Lambda entrypoint of BatchFunction: S3 ObjectCreated events (batch files) and SQS events (batch
messages and single chat requests). Thin: everything lives in `handler.batch`."""

from __future__ import annotations

from typing import Any

from handler.entrypoints import snapstart
from handler.observability import logger

snapstart.register()  # SnapStart's runtime hooks (a no-op off Lambda)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from handler.batch import runtime
    from handler.wiring import default_batch_runtime

    records = event.get("Records") or []
    source = records[0].get("eventSource") if records else None
    if source == "aws:s3":
        return runtime.handle_s3_event(default_batch_runtime(), event)
    if source == "aws:sqs":
        return runtime.handle_sqs_event(default_batch_runtime(), event, context)
    if event.get("Event") == "s3:TestEvent":  # sent once when the bucket notification is set up
        return {"batches": []}
    raise ValueError("BatchFunction expects an S3 ObjectCreated or an SQS event")
