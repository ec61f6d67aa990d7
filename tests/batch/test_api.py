"""`/api/v1/batches`: start a batch from a key in the bucket, follow it, list batches."""

from __future__ import annotations

import json

import boto3
from fastapi.testclient import TestClient

from gatewayctl.local.batch import Pipeline
from tests.batch.conftest import chat_line, good_lines, read_output
from tests.conftest import EVENTS_DIR, put_project


def _finished(client: TestClient, batch_id: str) -> bool:
    return bool(client.get(f"/api/v1/batches/{batch_id}").json()["status"] in ("completed", "failed"))


def test_start_follow_and_list_a_batch(client: TestClient, pipeline: Pipeline, aws: dict[str, str]) -> None:
    put_project({"project": "other", "default_model": "echo", "models": {"echo": {"provider": "echo"}}})
    lines = [*good_lines(11), chat_line("elsewhere", "not this batch's project", model="other")]
    boto3.client("s3").put_object(
        Bucket=aws["BUCKET_NAME"], Key="batches/uploads/demo/nightly.jsonl", Body="\n".join(lines).encode()
    )

    created = client.post(
        "/api/v1/batches",
        json={
            "input_key": "batches/uploads/demo/nightly.jsonl",
            "project": "demo",
            "metadata": {"run": "nightly"},
        },
    )
    assert created.status_code == 202, created.text
    batch = created.json()
    assert batch["status"] == "validating" and batch["project"] == "demo" and batch["source"] == "api"
    assert batch["output_key"] == f"batches/output/{batch['id']}.jsonl" and batch["metadata"] == {
        "run": "nightly"
    }
    assert client.get(f"/api/v1/batches/{batch['id']}").json()["status"] == "validating"

    pipeline.drain(lambda: _finished(client, batch["id"]), timeout_s=60)  # split message, then lines
    done = client.get(f"/api/v1/batches/{batch['id']}").json()
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": 12, "completed": 11, "failed": 1}
    assert done["in_progress_at"] is not None and done["completed_at"] >= done["created_at"]
    output = read_output(aws["BUCKET_NAME"], done["output_key"])
    assert [o["custom_id"] for o in output] == [*(f"req-{i}" for i in range(11)), "elsewhere"]
    # A batch belongs to one project: another project is one that does not exist (issue 11, A3).
    assert output[-1]["response"]["status_code"] == 404

    listed = client.get("/api/v1/batches").json()
    assert listed["object"] == "list" and [b["id"] for b in listed["data"]] == [batch["id"]]
    assert listed["data"][0]["request_counts"]["completed"] == 11 and listed["has_more"] is False
    assert client.get("/api/v1/batches", params={"project": "other"}).json()["data"] == []


def test_s3_batches_are_listed_newest_first_with_a_cursor(
    client: TestClient, pipeline: Pipeline, aws: dict[str, str]
) -> None:
    ids = [
        pipeline.upload(b"\n".join(x.encode() for x in good_lines(2)), f"batches/input/b{i}.jsonl")[
            "batches"
        ][0]["id"]
        for i in range(3)
    ]
    first = client.get("/api/v1/batches", params={"limit": 2}).json()
    assert [b["id"] for b in first["data"]] == ids[::-1][:2] and first["has_more"]
    rest = client.get("/api/v1/batches", params={"limit": 2, "after": first["next"]}).json()
    assert [b["id"] for b in rest["data"]] == [ids[0]] and rest["data"][0]["project"] == "demo"


def test_batch_errors_name_the_problem(client: TestClient, aws: dict[str, str]) -> None:
    missing = client.post(
        "/api/v1/batches", json={"input_key": "batches/uploads/demo/none.jsonl", "project": "demo"}
    )
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "input_key"
    output = client.post("/api/v1/batches", json={"input_key": "batches/output/x.jsonl", "project": "demo"})
    assert output.status_code == 400 and output.json()["error"]["param"] == "input_key"
    no_project = client.post(
        "/api/v1/batches", json={"input_key": "batches/uploads/x.jsonl", "project": "nope"}
    )
    assert no_project.status_code == 404 and no_project.json()["error"]["message"].startswith(
        "EntityNotFound:"
    )
    assert client.post("/api/v1/batches", json={"project": "demo"}).json()["error"]["param"] == "input_key"
    unknown = client.get("/api/v1/batches/7d1f5c3e-0000-4000-8000-000000000000")
    assert unknown.status_code == 404
    assert client.get("/api/v1/batches/not-a-uuid").status_code == 400
    assert client.get("/api/v1/batches", params={"after": "garbage"}).status_code == 400
    assert client.get("/api/v1/batches", headers={"Authorization": ""}).status_code in (401, 403)


def test_the_s3_event_file_drives_the_handler(pipeline: Pipeline, aws: dict[str, str]) -> None:
    from tests.batch.conftest import invoke

    event = json.loads((EVENTS_DIR / "s3_put.json").read_text())
    obj = event["Records"][0]["s3"]["object"]
    data = (EVENTS_DIR / "batch_example.jsonl").read_bytes()
    assert obj["size"] == len(data)
    boto3.client("s3").put_object(
        Bucket=event["Records"][0]["s3"]["bucket"]["name"], Key=obj["key"], Body=data
    )
    (started,) = invoke(event)["batches"]
    assert started["status"] == "in_progress"

    from handler.wiring import default_batch_runtime as runtime

    def finished() -> bool:
        job = runtime().table.get(started["id"])
        return job is not None and job.status == "completed"

    pipeline.drain(finished, timeout_s=60)
    output = read_output(aws["BUCKET_NAME"], started["output_key"])
    assert [o["custom_id"] for o in output] == ["greeting-1", "greeting-2", "too-many"]
    assert [o["error"] is None for o in output] == [True, True, False]
