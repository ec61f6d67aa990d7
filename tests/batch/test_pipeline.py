"""S3 batches end to end on moto: split, fan out, count once, assemble once; redeliveries change nothing."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest

from gatewayctl.local.batch import LambdaContext, Pipeline, report, run
from handler.wiring import default_batch_runtime as runtime
from tests.batch.conftest import chat_line, good_lines, invoke, read_output, receive_all, records_of
from tests.conftest import AUTH


def thousand_lines() -> tuple[list[str], dict[int, str]]:
    """1,000 lines, 50 of them bad: 17 not JSON, 17 repeating an earlier custom_id, 16 invalid requests."""
    lines = good_lines(1000)
    bad: dict[int, str] = {}
    for j, index in enumerate(range(7, 1000, 20)):  # 50 positions spread over the file
        if j % 3 == 0:
            lines[index] = '{"custom_id": "broken", "body": {'
            bad[index] = "invalid_json"
        elif j % 3 == 1:
            lines[index] = chat_line(f"req-{index - 1}", "same id as the line before")
            bad[index] = "duplicate_custom_id"
        else:
            lines[index] = chat_line(f"req-{index}", "too hot", temperature=5)
            bad[index] = "invalid_request"
    return lines, bad


def test_a_thousand_lines_with_bad_ones_then_every_message_again(
    aws: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines, bad = thousand_lines()
    path = tmp_path / "eval.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "eval.output.jsonl"

    # The local batch command's pipeline: upload, S3 event, queue drained into the handler.
    result, pipeline = run(path, out, workers=1, progress=True)
    printed = report(result, out, aws["BUCKET_NAME"])
    assert f"s3://{aws['BUCKET_NAME']}/batches/output/eval.jsonl" in printed and str(out) in printed
    assert "100%" in capsys.readouterr().err  # the progress bar reached the end

    assert result["status"] == "completed"
    assert result["request_counts"] == {"total": 1000, "completed": 950, "failed": 50}
    output = read_output(aws["BUCKET_NAME"], "batches/output/eval.jsonl")
    s3 = boto3.client("s3")
    assert (
        out.read_bytes()
        == s3.get_object(Bucket=aws["BUCKET_NAME"], Key="batches/output/eval.jsonl")["Body"].read()
    )
    assert len(output) == 1000

    # One line per input line, in input order; 950 answers and 50 errors.
    answered = [o for o in output if o["error"] is None]
    assert len(answered) == 950 and all(o["response"]["status_code"] == 200 for o in answered)
    errors = {i: o for i, o in enumerate(output) if o["error"] is not None}
    assert {i: o["error"]["code"] for i, o in errors.items()} == bad
    for i, o in errors.items():
        if bad[i] == "invalid_request":
            assert o["response"]["status_code"] == 400
            assert o["response"]["body"]["error"]["param"] == "temperature"
        else:
            assert o["response"] is None
    # Every custom_id once, except where the input itself repeats one (the repeat is the error line).
    input_ids = Counter(json.loads(line)["custom_id"] for line in lines if not line.endswith("{"))
    assert Counter(o["custom_id"] for o in output if o["custom_id"] is not None) == input_ids
    assert Counter(o["custom_id"] for o in answered).most_common(1)[0][1] == 1
    for i, o in enumerate(output):
        if i not in bad:
            assert o["custom_id"] == f"req-{i}"
            assert o["response"]["body"]["choices"][0]["message"]["content"] == f"Hello number {i}"
    assert len({o["id"] for o in output}) == 1000

    # Stored like live requests (store forced on), one record per answer.
    completions = records_of("completion")
    assert len(completions) == 950
    stored_ids = {c["pk"]["S"].removeprefix("COMPLETION#") for c in completions}
    assert stored_ids == {o["response"]["body"]["choices"][0]["completion_id"] for o in answered}

    # Redeliver every SQS message of the batch a second time: nothing changes.
    before = s3.head_object(Bucket=aws["BUCKET_NAME"], Key="batches/output/eval.jsonl")
    idempotency_records = boto3.client("dynamodb").scan(TableName=aws["IDEMPOTENCY_TABLE_NAME"])["Count"]
    delivered = [r for event in pipeline.events for r in event["Records"]]
    assert len(delivered) == 100  # ten lines per message
    for event in pipeline.events:
        redelivered = {
            "Records": [
                {**r, "attributes": {**r["attributes"], "ApproximateReceiveCount": "2"}}
                for r in event["Records"]
            ]
        }
        assert invoke(redelivered) == {"batchItemFailures": []}

    assert len(records_of("completion")) == 950
    after = s3.head_object(Bucket=aws["BUCKET_NAME"], Key="batches/output/eval.jsonl")
    assert (after["ETag"], after["LastModified"]) == (before["ETag"], before["LastModified"])
    job = runtime().table.get(result["id"])
    assert job is not None and job.public()["request_counts"] == result["request_counts"]
    assert job.status == "completed" and job.completed_at == pytest.approx(result["completed_at"], abs=1)
    assert (
        boto3.client("dynamodb").scan(TableName=aws["IDEMPOTENCY_TABLE_NAME"])["Count"] == idempotency_records
    )

    # The same answer as a live call (the echo model is deterministic).
    from fastapi.testclient import TestClient

    from handler.wiring import create_app

    with TestClient(create_app(), headers=AUTH) as client:
        live = client.post("/api/v1/chat/completions", json=json.loads(lines[0])["body"]).json()
    batch = output[0]["response"]["body"]
    for same in ("object", "model", "usage"):
        assert batch[same] == live[same]
    assert batch["choices"][0]["message"]["content"] == live["choices"][0]["message"]["content"]
    assert batch.keys() == live.keys()


def test_a_repeated_s3_event_starts_nothing_new(pipeline: Pipeline, aws: dict[str, str]) -> None:
    data = ("\n".join(good_lines(25)) + "\n").encode()
    etag = pipeline.s3.put_object(Bucket=aws["BUCKET_NAME"], Key="batches/input/twice.jsonl", Body=data)[
        "ETag"
    ]
    from gatewayctl.local.batch import s3_event

    event = s3_event(aws["BUCKET_NAME"], "batches/input/twice.jsonl", etag, len(data), "0055AED6DCD90281E5")
    first = invoke(event)["batches"][0]
    assert first["status"] == "in_progress"
    assert invoke(event)["batches"][0]["id"] == first["id"]  # S3 delivered the event twice
    messages = receive_all(aws["BATCH_QUEUE_URL"])
    assert len(messages) == 3  # the second event queued nothing: the batch had left `validating`


def test_a_raising_line_fails_only_its_message_and_succeeds_on_retry(
    pipeline: Pipeline, aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from handler.batch.worker import Worker
    from handler.completions.service import CompletionService

    calls = Counter[str]()
    original_complete = CompletionService.complete

    async def counting_complete(self: CompletionService, plan: Any) -> Any:
        calls[plan.request_id] += 1
        return await original_complete(self, plan)

    monkeypatch.setattr(CompletionService, "complete", counting_complete)
    original_answer = Worker.answer
    raised: list[str] = []

    async def flaky_answer(self: Worker, seed: str, custom_id: str | None, *args: Any) -> Any:
        if custom_id == "req-15" and not raised:
            raised.append(seed)
            raise RuntimeError("worker crashed")
        return await original_answer(self, seed, custom_id, *args)

    monkeypatch.setattr(Worker, "answer", flaky_answer)

    started = pipeline.upload(("\n".join(good_lines(30)) + "\n").encode(), "batches/input/flaky.jsonl")
    batch_id = started["batches"][0]["id"]
    messages = receive_all(aws["BATCH_QUEUE_URL"])
    assert len(messages) == 3
    from gatewayctl.local.batch import sqs_event

    response = invoke(sqs_event(messages, pipeline.queue_arn))
    failing = next(m["MessageId"] for m in messages if '"req-15"' in m["Body"])
    assert response == {"batchItemFailures": [{"itemIdentifier": failing}]}
    job = runtime().table.get(batch_id)
    assert job is not None and (job.status, job.done) == ("in_progress", 20)

    # Lambda would delete the two others; the failed one comes back after its visibility timeout.
    for m in messages:
        if m["MessageId"] != failing:
            pipeline.sqs.delete_message(QueueUrl=pipeline.queue_url, ReceiptHandle=m["ReceiptHandle"])
        else:
            pipeline.sqs.change_message_visibility(
                QueueUrl=pipeline.queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
            )
    again = receive_all(aws["BATCH_QUEUE_URL"])
    assert [m["MessageId"] for m in again] == [failing] and again[0]["Attributes"][
        "ApproximateReceiveCount"
    ] == "2"
    assert invoke(sqs_event(again, pipeline.queue_arn)) == {"batchItemFailures": []}

    job = runtime().table.get(batch_id)
    assert job is not None and job.status == "completed" and (job.completed, job.failed) == (30, 0)
    output = read_output(aws["BUCKET_NAME"], job.output_key)
    assert [o["custom_id"] for o in output] == [f"req-{i}" for i in range(30)]
    # The nine lines of the failed message that had succeeded were not run again: one call per line.
    assert len(calls) == 30 and set(calls.values()) == {1}
    assert len(records_of("completion")) == 30


def test_a_line_that_fails_on_its_last_receive_becomes_an_error_line(
    pipeline: Pipeline, aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from handler.batch.worker import Worker

    original_answer = Worker.answer

    async def broken(self: Worker, seed: str, custom_id: str | None, *args: Any) -> Any:
        if custom_id == "req-3":
            raise RuntimeError("this line always crashes the worker")
        return await original_answer(self, seed, custom_id, *args)

    monkeypatch.setattr(Worker, "answer", broken)
    batch_id = pipeline.upload(("\n".join(good_lines(5)) + "\n").encode(), "batches/input/stuck.jsonl")[
        "batches"
    ][0]["id"]
    (message,) = receive_all(aws["BATCH_QUEUE_URL"])
    from gatewayctl.local.batch import sqs_event

    event = sqs_event([message], pipeline.queue_arn)
    assert invoke(event)["batchItemFailures"]  # receives 1..4 fail, the queue keeps the message
    last = runtime().settings.batch_max_receives
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = str(last)
    assert invoke(event) == {"batchItemFailures": []}
    job = runtime().table.get(batch_id)
    assert job is not None and job.status == "completed" and (job.completed, job.failed) == (4, 1)
    output = read_output(aws["BUCKET_NAME"], job.output_key)
    assert output[3]["custom_id"] == "req-3" and output[3]["error"]["code"] == "internal_error"


def test_a_worker_that_dies_between_storing_and_idempotency_does_not_store_twice(
    pipeline: Pipeline, aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window: the completion is stored, Idempotency still says `in progress`, the worker is gone."""
    from aws_lambda_powertools.utilities.idempotency.persistence.dynamodb import DynamoDBPersistenceLayer

    from handler.completions.service import CompletionService

    calls = Counter[str]()
    original_complete = CompletionService.complete

    async def counting_complete(self: CompletionService, plan: Any) -> Any:
        calls[plan.request_id] += 1
        return await original_complete(self, plan)

    monkeypatch.setattr(CompletionService, "complete", counting_complete)

    def dies(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("the worker lost its connection before recording success")

    batch_id = pipeline.upload(("\n".join(good_lines(10)) + "\n").encode(), "batches/input/window.jsonl")[
        "batches"
    ][0]["id"]
    (message,) = receive_all(aws["BATCH_QUEUE_URL"])
    from gatewayctl.local.batch import sqs_event

    event = sqs_event([message], pipeline.queue_arn)
    with monkeypatch.context() as m:
        m.setattr(DynamoDBPersistenceLayer, "_update_record", dies)
        expired = LambdaContext(timeout_ms=0)  # its in-progress records expire at once, like a dead worker's
        from handler.entrypoints.batch import lambda_handler

        assert lambda_handler(event, expired)["batchItemFailures"]
    assert len(records_of("completion")) == 10 and len(calls) == 10  # stored, but not recorded as done

    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "2"
    assert invoke(event) == {"batchItemFailures": []}
    assert len(records_of("completion")) == 10
    assert set(calls.values()) == {1}  # the stored answers were reused: no model call the second time
    job = runtime().table.get(batch_id)
    assert job is not None and (job.status, job.completed) == ("completed", 10)
    output = read_output(aws["BUCKET_NAME"], job.output_key)
    stored = {c["pk"]["S"].removeprefix("COMPLETION#") for c in records_of("completion")}
    assert {o["response"]["body"]["choices"][0]["completion_id"] for o in output} == stored


def test_bad_files_fail_the_batch_not_the_function(pipeline: Pipeline, aws: dict[str, str]) -> None:
    empty = pipeline.upload(b"\n\n", "batches/input/empty.jsonl")["batches"][0]
    assert empty["status"] == "failed"
    job = runtime().table.get(empty["id"])
    assert job is not None and job.error == "the input file has no lines"
    ignored = invoke(
        {"Records": [{**_record(aws["BUCKET_NAME"], "batches/output/x.jsonl")}]}
    )  # outputs never start batches
    assert ignored == {"batches": []}
    missing = invoke({"Records": [_record(aws["BUCKET_NAME"], "batches/input/gone.jsonl")]})["batches"][0]
    assert missing["status"] == "failed"
    assert invoke({"Service": "Amazon S3", "Event": "s3:TestEvent"}) == {"batches": []}


def _record(bucket: str, key: str) -> dict[str, Any]:
    from gatewayctl.local.batch import s3_event

    record: dict[str, Any] = s3_event(bucket, key, "", 0, "00AA")["Records"][0]
    return record
