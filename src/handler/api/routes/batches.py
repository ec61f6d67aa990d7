"""Batches: start one from a file already in the bucket, read one, list them.

A batch belongs to one project: the one named when it is started here, or (for a file uploaded to
`batches/input/`) the project of its first request. Keys scoped to other projects never see it.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from handler.api.auth import require_project
from handler.api.deps import ServiceDep
from handler.errors import InvalidRequest, NotFound

if TYPE_CHECKING:
    from handler.batch.jobs import BatchJob
    from handler.batch.runtime import Runtime

router = APIRouter()

_CURSOR = re.compile(r"^\d{17}#[0-9a-f-]{36}$")
_NOT_INPUT = ("batches/output/", "batches/parts/")


class CreateBatch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    input_key: Annotated[StrictStr, Field(min_length=1, max_length=1024)]
    project: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    metadata: dict[StrictStr, StrictStr] | None = None


def _runtime(request: Request) -> Runtime:
    from handler.api.deps import services_of

    return services_of(request).batches()


def _projects(request: Request) -> frozenset[str] | None:
    """The projects the caller's key covers; None: every project."""
    principal = getattr(request.state, "principal", None)
    projects: frozenset[str] | None = getattr(principal, "projects", None)
    return projects


def _visible(request: Request, job: BatchJob) -> None:
    """403 for another project's batch; a batch with no project yet is for unrestricted keys only."""
    if job.project is not None:
        require_project(request, job.project)
    elif _projects(request) is not None:
        raise NotFound(f"batch {job.id} does not exist", param="batch_id")


@router.post("/api/v1/batches", status_code=202, summary="Start a batch from a JSONL file in the bucket")
async def create_batch(body: CreateBatch, request: Request, service: ServiceDep) -> dict[str, Any]:
    require_project(request, body.project)
    key = body.input_key.lstrip("/")
    if not key.startswith("batches/") or key.startswith(_NOT_INPUT):
        raise InvalidRequest(
            "input_key: must be a key under batches/ (not batches/output/ or batches/parts/)",
            param="input_key",
        )
    await asyncio.to_thread(service.config.project, body.project)  # 404 for an unknown project
    rt = _runtime(request)
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
    return job.public()


@router.get("/api/v1/batches/{batch_id}", summary="Read a batch: status, counts, input and output keys")
async def get_batch(batch_id: str, request: Request) -> dict[str, Any]:
    try:
        bid = str(uuid.UUID(batch_id))
    except ValueError:
        raise InvalidRequest(f"batch_id: {batch_id!r} is not a valid UUID", param="batch_id") from None
    job = await asyncio.to_thread(_runtime(request).table.get, bid)
    if job is None:
        raise NotFound(f"batch {bid} does not exist", param="batch_id")
    _visible(request, job)
    return job.public()


@router.get("/api/v1/batches", summary="List batches, newest first")
async def list_batches(
    request: Request,
    project: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query(description="the `next` cursor of the previous page")] = None,
) -> dict[str, Any]:
    if after is not None and not _CURSOR.match(after):
        raise InvalidRequest("after: not a cursor returned by this endpoint", param="after")
    projects = _projects(request)
    if project is not None:
        require_project(request, project)
        projects = frozenset({project})
    jobs, cursor = await asyncio.to_thread(_runtime(request).table.page, projects, limit, after)
    return {
        "object": "list",
        "data": [job.public() for job in jobs],
        "has_more": cursor is not None,
        "next": cursor,
    }
