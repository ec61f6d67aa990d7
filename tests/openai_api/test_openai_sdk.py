"""The openai SDK, unchanged, against the real local server (uvicorn, moto): `client.files`,
`client.batches` and `client.models` (issue #17's Done-when).

Shapes from the OpenAI API reference: Files (`file` object; `files.content` returns the raw bytes),
Batch (`batch` object: status validating / in_progress / finalizing / completed / failed /
cancelling / cancelled, `request_counts`, `output_file_id` with the successes and `error_file_id`
with the failures), Models (`{"object": "list", "data": [{"id", "object": "model", "created",
"owned_by"}]}`). A batch's list is a cursor page whose `after` is the last batch's id.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote, urlparse

import boto3
import openai
import pytest

from gatewayctl.local.batch import Pipeline
from tests.batch.conftest import chat_line
from tests.openai_api.conftest import jsonl as _jsonl


def test_the_batch_flow_of_the_openai_sdk(gateway: dict[str, Any]) -> None:
    demo: openai.OpenAI = gateway["clients"]["demo"]
    lab: openai.OpenAI = gateway["clients"]["lab"]
    pipeline: Pipeline = gateway["pipeline"]
    lines = [
        chat_line("ok-1", "first"),
        chat_line("bad", "too hot", temperature=5),
        json.dumps(
            {
                "custom_id": "ok-2",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "demo", "messages": [{"role": "user", "content": "second"}]},
            }
        ),
    ]
    uploaded = demo.files.create(file=("evals.jsonl", _jsonl(lines)), purpose="batch")
    assert uploaded.object == "file" and uploaded.purpose == "batch" and uploaded.filename == "evals.jsonl"
    assert uploaded.bytes == len(_jsonl(lines).getvalue())
    assert demo.files.retrieve(uploaded.id).id == uploaded.id
    assert demo.files.content(uploaded.id).content == _jsonl(lines).getvalue()

    batch = demo.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"run": "nightly"},
    )
    assert batch.object == "batch" and batch.status == "validating" and batch.input_file_id == uploaded.id
    assert batch.metadata == {"run": "nightly"} and batch.endpoint == "/v1/chat/completions"

    pipeline.drain(
        lambda: demo.batches.retrieve(batch.id).status not in ("validating", "in_progress"), timeout_s=60
    )
    done = demo.batches.retrieve(batch.id)
    assert done.status == "completed" and done.completed_at is not None
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (3, 2, 1)
    assert done.output_file_id and done.error_file_id
    output = [json.loads(x) for x in demo.files.content(done.output_file_id).content.splitlines()]
    errors = [json.loads(x) for x in demo.files.content(done.error_file_id).content.splitlines()]
    assert [o["custom_id"] for o in output] == ["ok-1", "ok-2"]
    assert output[1]["response"]["status_code"] == 200 and output[1]["error"] is None
    assert output[1]["response"]["body"]["choices"][0]["message"]["content"] == "second"
    assert [e["custom_id"] for e in errors] == ["bad"] and errors[0]["response"]["status_code"] == 400
    assert demo.files.retrieve(done.error_file_id).bytes == len(
        demo.files.content(done.error_file_id).content
    )

    # A second batch, cancelled before any line ran: it ends `cancelled`, every line in the error file.
    second = demo.batches.create(
        input_file_id=uploaded.id, endpoint="/api/v1/chat/completions", completion_window="24h"
    )
    assert demo.batches.cancel(second.id).status == "cancelling"
    pipeline.drain(lambda: demo.batches.retrieve(second.id).status == "cancelled", timeout_s=60)
    cancelled = demo.batches.retrieve(second.id)
    assert cancelled.cancelled_at is not None and cancelled.output_file_id is None and cancelled.error_file_id
    codes = [
        json.loads(x)["error"]["code"]
        for x in demo.files.content(cancelled.error_file_id).content.splitlines()
    ]
    assert codes == ["batch_cancelled"] * 3
    with pytest.raises(openai.ConflictError):
        demo.batches.cancel(batch.id)  # it has completed

    # The batches' output files are in the file list, as `batch_output`, the same objects as read.
    outputs = {f.id: f for f in demo.files.list(purpose="batch_output")}
    assert set(outputs) == {done.output_file_id, done.error_file_id, cancelled.error_file_id}
    assert outputs[done.error_file_id] == demo.files.retrieve(done.error_file_id)
    assert [f.id for f in demo.files.list(purpose="batch")] == [uploaded.id]

    # The list, newest first, paged with `after` (the SDK's cursor is the last batch's id).
    first_page = demo.batches.list(limit=1)
    assert [b.id for b in first_page.data] == [second.id] and first_page.has_more
    assert [b.id for b in demo.batches.list(limit=1, after=second.id).data] == [batch.id]
    assert [b.id for b in demo.batches.list(limit=1)] == [second.id, batch.id]  # every page, by `after`

    # Another project's key: each id answers 404, and its list is empty.
    for call in (
        lambda: lab.files.retrieve(uploaded.id),
        lambda: lab.files.content(uploaded.id),
        lambda: lab.files.retrieve(done.output_file_id or ""),
        lambda: lab.files.content(done.error_file_id or ""),
        lambda: lab.files.delete(uploaded.id),
        lambda: lab.batches.retrieve(batch.id),
        lambda: lab.batches.cancel(second.id),
        lambda: lab.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        ),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert lab.batches.list().data == [] and lab.files.list().data == []

    assert demo.files.delete(uploaded.id).deleted
    with pytest.raises(openai.NotFoundError):
        demo.files.retrieve(uploaded.id)


def test_models_list_is_exactly_the_keys_models(gateway: dict[str, Any]) -> None:
    demo: openai.OpenAI = gateway["clients"]["demo"]
    lab: openai.OpenAI = gateway["clients"]["lab"]
    from gatewayctl.config_files import load_file
    from tests.conftest import TEST_CONFIG_DIR

    for client, name in ((demo, "demo"), (lab, "lab")):
        config = load_file(TEST_CONFIG_DIR / f"{name}.yaml")
        models = list(client.models.list())
        assert [m.id for m in models] == [name, *(f"{name}/{m}" for m in sorted(config.models))]
        assert {m.object for m in models} == {"model"} and {m.owned_by for m in models} == {name}
        assert models[0].model_extra == {"default_model": f"{name}/{config.default_model}"}
        assert client.models.retrieve(f"{name}/{config.default_model}").owned_by == name
    with pytest.raises(openai.NotFoundError):
        demo.models.retrieve("lab")  # another project's: like one that does not exist
    with pytest.raises(openai.NotFoundError):
        demo.models.retrieve("demo/nope")


def test_a_file_above_the_request_limit_goes_through_an_upload_url(gateway: dict[str, Any]) -> None:
    """API Gateway takes at most 10 MB per request: a larger file is PUT to a presigned S3 URL."""
    import httpx

    demo: openai.OpenAI = gateway["clients"]["demo"]
    upload = demo.post("/files/uploads", body={"filename": "big.jsonl"}, cast_to=httpx.Response).json()
    assert upload["method"] == "PUT" and upload["file"]["status"] == "uploaded"
    url = urlparse(upload["url"])
    key = f"batches/files/demo/{upload['file']['id']}.jsonl"
    assert unquote(url.path).endswith(key) and "Signature" in url.query
    data = _jsonl([chat_line(f"r{i}", "x" * 100) for i in range(5)]).getvalue()
    # What `curl -T big.jsonl "$url"` does; moto emulates S3 in-process, so the test puts the object.
    boto3.client("s3").put_object(Bucket=gateway["pipeline"].bucket, Key=key, Body=data)
    arrived = demo.files.retrieve(upload["file"]["id"])
    assert arrived.status == "processed" and arrived.bytes == len(data)
    batch = demo.batches.create(
        input_file_id=arrived.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    gateway["pipeline"].drain(lambda: demo.batches.retrieve(batch.id).status == "completed", timeout_s=60)
    counts = demo.batches.retrieve(batch.id).request_counts
    assert counts is not None and counts.completed == 5
