"""`transact_once` against DynamoDB's answers: a marker already there writes nothing, a conflict
with another transaction on a hot counter is sent again, anything else is raised."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from handler.store.dynamo import Backoff
from handler.store.once import transact_once

pytestmark = pytest.mark.unit

NO_PAUSE = Backoff(attempts=4, sleep=lambda _: None)
MARKER = {"pk": {"S": "REQUEST#r"}, "sk": {"S": "COUNTED#USAGE"}}
UPDATE = {"Update": {"TableName": "t", "Key": {"pk": {"S": "USAGE#p"}, "sk": {"S": "DAY#x"}}}}


def cancelled(*codes: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": c} for c in codes],
        },
        "TransactWriteItems",
    )


class Answers:
    """A client whose transactions fail with `errors`, in order, then succeed."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def transact_write_items(self, **params: Any) -> dict[str, Any]:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return {}


def test_a_conflict_with_another_transaction_is_sent_again() -> None:
    client = Answers(cancelled("None", "TransactionConflict"), cancelled("None", "TransactionConflict"))
    assert transact_once(client, "t", MARKER, [UPDATE], backoff=NO_PAUSE) is True  # type: ignore[arg-type]
    assert client.calls == 3


def test_a_marker_already_there_writes_nothing_and_is_not_retried() -> None:
    client = Answers(cancelled("ConditionalCheckFailed", "None"))
    assert transact_once(client, "t", MARKER, [UPDATE], backoff=NO_PAUSE) is False  # type: ignore[arg-type]
    assert client.calls == 1


def test_conflicts_that_last_and_other_errors_are_raised() -> None:
    lasting = Answers(*[cancelled("None", "TransactionConflict")] * 4)
    with pytest.raises(ClientError):
        transact_once(lasting, "t", MARKER, [UPDATE], backoff=NO_PAUSE)  # type: ignore[arg-type]
    assert lasting.calls == 4
    other = Answers(cancelled("None", "ValidationError"))
    with pytest.raises(ClientError):
        transact_once(other, "t", MARKER, [UPDATE], backoff=NO_PAUSE)  # type: ignore[arg-type]
    assert other.calls == 1
