"""Lambda entrypoint of StoreRetryFunction: writes the records queued on StoreRetryQueue.

Each SQS message holds one request's records (store/retry.py). A message whose write fails again is
reported back as a partial batch failure: SQS redelivers it later (visibility timeout), and after
`maxReceiveCount` tries it goes to the dead-letter queue instead of being lost.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from handler.entrypoints import snapstart
from handler.observability import logger

snapstart.register()  # SnapStart's runtime hooks (a no-op off Lambda)


@cache
def _processor() -> Any:
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

    # A batch that fails whole is reported like any other (each message back on the queue), not
    # raised: the table being down is expected here, and the log says which messages wait.
    return BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _write(record: Any) -> None:
    """One queued message: its records, written to the table (raises to have it retried)."""
    from handler import wiring
    from handler.store import retry

    store = wiring.default_store()
    records = retry.decode(record.body, store.payloads)
    store.put_completions(records)
    logger.info(
        "queued completion records stored",
        extra={"completion_ids": [r.completion_id for r in records], "message_id": record.message_id},
    )


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.batch import process_partial_response

    response: dict[str, Any] = process_partial_response(  # type: ignore[assignment]
        event=event, record_handler=_write, processor=_processor(), context=context
    )
    return response
