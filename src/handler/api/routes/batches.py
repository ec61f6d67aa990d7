"""Batches: start one from a file already in the bucket, read one, list them.

A batch belongs to one project: the one named when it is started here, or (for a file uploaded to
`batches/input/`) the project of its first request. Keys scoped to other projects never see it.
The body of a batch is `BatchObject`, OpenAI's batch object with this gateway's fields. Nothing of
`handler.batch` is imported until a batch route runs: most invocations never touch a batch.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from handler.api.auth import CallerDep
from handler.api.deps import ServicesDep
from handler.api.params import uuid_param
from handler.completions.caller import Caller, missing_project
from handler.contract.errors import ErrorResponse
from handler.errors import InvalidRequest, NotFound

if TYPE_CHECKING:
    from handler.batch.jobs import BatchJob

router = APIRouter()

_CURSOR = re.compile(r"^\d{17}#[0-9a-f-]{36}$")
_NOT_INPUT = ("batches/output/", "batches/parts/")
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Invalid body, id or cursor (the field is named)"},
    404: {"model": ErrorResponse, "description": "Unknown batch, project or input key (`EntityNotFound:`)"},
}


class CreateBatch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    input_key: Annotated[StrictStr, Field(min_length=1, max_length=1024)]
    project: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    metadata: dict[StrictStr, StrictStr] | None = None


class RequestCounts(BaseModel):
    total: int  # 0 until the whole input file has been read
    completed: int
    failed: int


class BatchObject(BaseModel):
    """`BatchJob.public()`: a batch as the API shows it (timestamps in Unix seconds, like OpenAI's)."""

    id: str
    object: Literal["batch"]
    project: str | None  # None until the first request of an uploaded file names it
    status: str  # validating | in_progress | completed | failed (`batch.jobs.BatchStatus`)
    source: Literal["s3", "api"]
    input_key: str
    output_key: str
    request_counts: RequestCounts
    created_at: int
    in_progress_at: int | None
    completed_at: int | None
    failed_at: int | None
    error: str | None
    metadata: dict[str, str]

    @classmethod
    def of(cls, job: BatchJob) -> BatchObject:
        return cls.model_validate(job.public())


class BatchList(BaseModel):
    object: Literal["list"]
    data: list[BatchObject]  # newest first
    has_more: bool
    next: str | None  # pass as `after` for the next page


def _visible(caller: Caller, job: BatchJob) -> None:
    """Another project's batch is a batch that does not exist (the same 404); a batch with no
    project yet is for unrestricted keys only."""
    if job.project is None and caller.projects is None:
        return
    if job.project is None or not caller.may_access(job.project):
        raise NotFound(f"batch {job.id} does not exist", param="batch_id")


@router.post(
    "/api/v1/batches",
    status_code=202,
    response_model=BatchObject,
    responses=_ERRORS,
    summary="Start a batch from a JSONL file in the bucket",
)
async def create_batch(body: CreateBatch, caller: CallerDep, services: ServicesDep) -> BatchObject:
    caller.require(body.project, "project")  # another project's: the unknown project's 404
    key = body.input_key.lstrip("/")
    if not key.startswith("batches/") or key.startswith(_NOT_INPUT):
        raise InvalidRequest(
            "input_key: must be a key under batches/ (not batches/output/ or batches/parts/)",
            param="input_key",
        )
    try:
        await asyncio.to_thread(services.completions.config.project, body.project)
    except NotFound:  # an unknown project: the same 404 as another project's
        raise missing_project(body.project, "project") from None
    rt = services.batches()
    etag = await asyncio.to_thread(rt.blobs.etag, key)
    if etag is None:
        raise NotFound(f"input_key {key!r} is not in the bucket", param="input_key")
    from handler.batch.splitter import output_key_for

    job = rt.splitter.new_job(
        id=str(uuid.uuid4()),
        source="api",
        input_key=key,
        output_key=output_key_for(key),
        input_etag=etag,
        project=body.project,
        metadata=body.metadata or {},
    )
    await asyncio.to_thread(rt.start, job)
    return BatchObject.of(job)


@router.get(
    "/api/v1/batches/{batch_id}",
    response_model=BatchObject,
    responses=_ERRORS,
    summary="Read a batch: status, counts, input and output keys",
)
async def get_batch(batch_id: str, caller: CallerDep, services: ServicesDep) -> BatchObject:
    bid = uuid_param(batch_id, "batch_id")
    job = await asyncio.to_thread(services.batches().table.get, bid)
    if job is None:
        raise NotFound(f"batch {bid} does not exist", param="batch_id")
    _visible(caller, job)
    return BatchObject.of(job)


@router.get(
    "/api/v1/batches", response_model=BatchList, responses=_ERRORS, summary="List batches, newest first"
)
async def list_batches(
    caller: CallerDep,
    services: ServicesDep,
    project: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query(description="the `next` cursor of the previous page")] = None,
) -> BatchList:
    if after is not None and not _CURSOR.match(after):
        raise InvalidRequest("after: not a cursor returned by this endpoint", param="after")
    projects = caller.projects
    if project is not None:
        caller.require(project, "project")
        projects = frozenset({project})
    jobs, cursor = await asyncio.to_thread(services.batches().table.page, projects, limit, after)
    return BatchList(
        object="list", data=[BatchObject.of(job) for job in jobs], has_more=cursor is not None, next=cursor
    )
