"""Batches: OpenAI's Batch API (`client.batches`) and this gateway's start from a key in the bucket.

A batch belongs to one project: the one of its input file (`input_file_id`, uploaded through
`/api/v1/files`), the one named with an `input_key` (a key under `batches/uploads/{project}/`, the
project's own prefix), or for a file dropped into `batches/input/` the project of its first request.
Another project's batch answers exactly like one that does not exist (404), and a key can only start
a batch on input of its own project. Every batch writes its own output (`batches/output/{id}.jsonl`
for the ones started here), so no batch can replace another's.
The body of a batch is `BatchObject`, OpenAI's batch object with this gateway's fields. Nothing of
`handler.batch` is imported until a batch route runs: most invocations never touch a batch.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from handler.api.auth import CallerDep
from handler.api.deps import Services, ServicesDep
from handler.api.openapi import error_docs
from handler.api.params import uuid_param
from handler.api.routes.files import can_see, resolve
from handler.completions.caller import Caller, missing_project
from handler.errors import Conflict, InvalidRequest, NotFound

if TYPE_CHECKING:
    from handler.batch.jobs import BatchJob

router = APIRouter()

_CURSOR = re.compile(r"^\d{17}#[0-9a-f-]{36}$")
_ENDPOINTS = ("/v1/chat/completions", "/api/v1/chat/completions")
_ERRORS = error_docs(
    (400, "Invalid body, id or cursor (the field is named)"),
    (404, "Unknown batch, file, project or input key (`EntityNotFound:`)"),
)


class CreateBatch(BaseModel):
    """OpenAI's `{input_file_id, endpoint, completion_window, metadata}`, or `{input_key, project}`."""

    model_config = ConfigDict(extra="ignore")

    input_file_id: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = None
    endpoint: (
        Annotated[StrictStr, Field(description="/v1/chat/completions or /api/v1/chat/completions")] | None
    ) = None
    completion_window: Literal["24h"] | None = None
    input_key: Annotated[StrictStr, Field(min_length=1, max_length=1024)] | None = None
    project: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = None
    metadata: Annotated[dict[StrictStr, StrictStr], Field(max_length=16)] | None = None


class RequestCounts(BaseModel):
    total: int  # 0 until the whole input file has been read
    completed: int
    failed: int


class BatchErrorItem(BaseModel):
    code: str
    message: str
    line: int | None


class BatchErrors(BaseModel):
    object: Literal["list"]
    data: list[BatchErrorItem]


class BatchObject(BaseModel):
    """`BatchJob.public()`: OpenAI's batch object (timestamps in Unix seconds) and this gateway's fields."""

    id: str
    object: Literal["batch"]
    endpoint: str
    errors: BatchErrors | None
    input_file_id: str | None  # None for a batch started from a key in the bucket
    completion_window: str
    output_file_id: str | None  # successes, once completed (None when no line succeeded)
    error_file_id: str | None  # failures, once completed (None when no line failed)
    project: str | None  # None until the first request of an uploaded file names it
    # validating | in_progress | completed | failed | cancelling | cancelled (`batch.jobs.BatchStatus`)
    status: str
    source: Literal["s3", "api"]
    input_key: str
    output_key: str  # every line, in input order (the files above split it)
    request_counts: RequestCounts
    created_at: int
    in_progress_at: int | None
    finalizing_at: int | None
    completed_at: int | None
    failed_at: int | None
    cancelling_at: int | None
    cancelled_at: int | None
    expires_at: int | None
    expired_at: int | None
    error: str | None
    metadata: dict[str, str]

    @classmethod
    def of(cls, job: BatchJob) -> BatchObject:
        return cls.model_validate(job.public())


class BatchList(BaseModel):
    object: Literal["list"]
    data: list[BatchObject]  # newest first
    first_id: str | None
    last_id: str | None  # pass as `after` for the next page (OpenAI's cursor)
    has_more: bool
    next: str | None  # or this, as `after`


async def _visible_job(services: Services, caller: Caller, batch_id: str) -> BatchJob:
    bid = uuid_param(batch_id, "batch_id")
    job = await asyncio.to_thread(services.batches().table.get, bid)
    if job is None or not can_see(caller, job):
        raise NotFound(f"batch {bid} does not exist", param="batch_id")
    return job


def _input_of_file(services: Services, caller: Caller, body: CreateBatch) -> tuple[str, str, str]:
    """(key, etag, project) of an uploaded file; 404 for a file this key may not read."""
    file_id = body.input_file_id or ""
    obj, key = resolve(services, caller, file_id)
    if obj["purpose"] != "batch":
        raise InvalidRequest("input_file_id: not a batch input file", param="input_file_id")
    etag = services.batches().blobs.etag(key)
    if etag is None or obj["project"] is None:
        raise InvalidRequest("input_file_id: the file's upload has not arrived", param="input_file_id")
    return key, etag, str(obj["project"])


def _input_of_key(services: Services, caller: Caller, body: CreateBatch) -> tuple[str, str, str]:
    """(key, etag, project) of a key under the project's own prefix."""
    if body.project is None:
        raise InvalidRequest("project: required with input_key", param="project")
    project = body.project
    caller.require(project, "project")  # another project's: the unknown project's 404
    try:
        services.completions.config.project(project)
    except NotFound:  # an unknown project: the same 404 as another project's
        raise missing_project(project, "project") from None
    key = body.input_key.lstrip("/") if body.input_key else ""
    prefixes = (f"batches/uploads/{project}/", f"batches/files/{project}/")
    if not key.startswith(prefixes) or len(key) == len(prefixes[0]):
        raise InvalidRequest(
            f"input_key: must be a key under batches/uploads/{project}/ (the project's own prefix)",
            param="input_key",
        )
    etag = services.batches().blobs.etag(key)
    if etag is None:
        raise NotFound(f"input_key {key!r} is not in the bucket", param="input_key")
    return key, etag, project


@router.post(
    "/api/v1/batches",
    status_code=202,
    response_model=BatchObject,
    responses=_ERRORS,
    summary="Start a batch: from an uploaded file (OpenAI's shape) or a key under the project's prefix",
)
async def create_batch(body: CreateBatch, caller: CallerDep, services: ServicesDep) -> BatchObject:
    if body.input_file_id is not None:
        if body.endpoint not in _ENDPOINTS:
            raise InvalidRequest(f"endpoint: must be one of {', '.join(_ENDPOINTS)}", param="endpoint")
        key, etag, project = await asyncio.to_thread(_input_of_file, services, caller, body)
    elif body.input_key is not None or body.project is not None:
        if body.input_key is None:
            raise InvalidRequest("input_key: required with project", param="input_key")
        key, etag, project = await asyncio.to_thread(_input_of_key, services, caller, body)
    else:
        raise InvalidRequest("input_file_id: required", param="input_file_id")
    rt = services.batches()
    batch_id = str(uuid.uuid4())
    job = rt.splitter.new_job(
        id=batch_id,
        source="api",
        input_key=key,
        output_key=f"batches/output/{batch_id}.jsonl",
        input_etag=etag,
        project=project,
        metadata=body.metadata or {},
        endpoint=body.endpoint or "/v1/chat/completions",
        completion_window=body.completion_window or "24h",
        input_file_id=body.input_file_id,
    )
    await asyncio.to_thread(rt.start, job)
    return BatchObject.of(job)


@router.get(
    "/api/v1/batches/{batch_id}",
    response_model=BatchObject,
    responses=_ERRORS,
    summary="Read a batch: status, counts, files, input and output keys",
)
async def get_batch(batch_id: str, caller: CallerDep, services: ServicesDep) -> BatchObject:
    return BatchObject.of(await _visible_job(services, caller, batch_id))


@router.post(
    "/api/v1/batches/{batch_id}/cancel",
    response_model=BatchObject,
    responses={**_ERRORS, **error_docs((409, "The batch has ended"))},
    summary="Cancel a batch: lines not started yet are not run; finished ones stay in the output",
)
async def cancel_batch(batch_id: str, caller: CallerDep, services: ServicesDep) -> BatchObject:
    job = await _visible_job(services, caller, batch_id)
    table = services.batches().table
    if job.status in ("validating", "in_progress"):
        await asyncio.to_thread(table.cancel, job.id)
    refreshed = await asyncio.to_thread(table.get, job.id)
    job = refreshed or job
    if job.status in ("completed", "failed"):
        raise Conflict(f"batch_id: batch {job.id} has already {job.status}", param="batch_id")
    return BatchObject.of(job)


def _cursor_of(services: Services, caller: Caller, after: str) -> str:
    """`after` as the listing cursor: this API's `next`, or a batch id (OpenAI's `last_id`)."""
    if _CURSOR.match(after):
        return after
    try:
        bid = str(uuid.UUID(after))
    except ValueError:
        raise InvalidRequest(
            "after: not a batch id or a cursor returned by this endpoint", param="after"
        ) from None
    job = services.batches().table.get(bid)
    if job is None or not can_see(caller, job):
        raise InvalidRequest("after: not a batch id or a cursor returned by this endpoint", param="after")
    from handler.store.dynamo import time_key

    return time_key(job.created_at, job.id)


@router.get(
    "/api/v1/batches", response_model=BatchList, responses=_ERRORS, summary="List batches, newest first"
)
async def list_batches(
    caller: CallerDep,
    services: ServicesDep,
    project: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[
        str | None, Query(description="the `last_id` (a batch id) or `next` cursor of the previous page")
    ] = None,
) -> BatchList:
    cursor_in = await asyncio.to_thread(_cursor_of, services, caller, after) if after is not None else None
    projects = caller.projects
    if project is not None:
        caller.require(project, "project")
        projects = frozenset({project})
    jobs, cursor = await asyncio.to_thread(services.batches().table.page, projects, limit, cursor_in)
    data = [BatchObject.of(job) for job in jobs]
    return BatchList(
        object="list",
        data=data,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
        has_more=cursor is not None,
        next=cursor,
    )
