"""OpenAI's Files API for batch input and output (`client.files`): upload, read, download, delete.

A file belongs to one project, and another project's file answers exactly like one that does not
exist (404). Uploads are `multipart/form-data` (what the openai SDK sends) up to `MAX_BODY_BYTES`;
API Gateway takes at most 10 MB per request, so a larger file goes straight to the bucket through
`POST /api/v1/files/uploads` (a presigned S3 PUT). A batch's output and error files are files too
(`file-batch-{batch_id}-output` / `-errors`), readable by the keys that may read the batch.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from handler.api.auth import CallerDep
from handler.api.deps import Services, ServicesDep
from handler.completions.caller import Caller
from handler.contract.errors import ErrorResponse
from handler.errors import InvalidRequest, NotFound

if TYPE_CHECKING:
    from handler.batch.files import FileRecord
    from handler.batch.jobs import BatchJob

router = APIRouter()

_BATCH_FILE = re.compile(r"^file-batch-([0-9a-f-]{36})-(output|errors)$")
_UPLOAD_URL_S = 3600
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Invalid field (named in `param`)"},
    404: {"model": ErrorResponse, "description": "No such file for this key (`EntityNotFound:`)"},
}


class FileObject(BaseModel):
    """OpenAI's `file` object, with the project it belongs to."""

    id: str
    object: Literal["file"]
    bytes: int
    created_at: int
    filename: str
    purpose: str  # `batch` (uploaded) or `batch_output` (a batch's output or error file)
    status: Literal["uploaded", "processed"]  # `uploaded`: a presigned upload not arrived yet
    project: str | None


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"]
    deleted: bool


class UploadRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    filename: Annotated[StrictStr, Field(min_length=1, max_length=255)]
    purpose: Literal["batch"] = "batch"
    project: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = None


class Upload(BaseModel):
    object: Literal["file.upload"]
    file: FileObject
    url: str  # PUT the file's bytes here (no other header needed)
    method: Literal["PUT"]
    expires_at: int


class DownloadUrl(BaseModel):
    object: Literal["file.download"]
    id: str
    url: str
    expires_at: int


def can_see(caller: Caller, job: BatchJob) -> bool:
    """Whether `caller` may see a batch (and its files); one with no project yet: unrestricted keys only."""
    if job.project is not None:
        return caller.may_access(job.project)
    return caller.projects is None


def _not_found(file_id: str) -> NotFound:
    return NotFound(f"file {file_id!r} does not exist", param="file_id")


def _project_for(caller: Caller, named: str | None, first_line: bytes | None) -> str:
    """The project a new file belongs to: named, the key's only project, or the first line's model."""
    if named is not None:
        caller.require(named, "project")
        return named
    if caller.projects is not None and len(caller.projects) == 1:
        return next(iter(caller.projects))
    if first_line is not None:
        from handler.batch.lines import model_project

        try:
            line = orjson.loads(first_line)
        except orjson.JSONDecodeError:
            line = None
        body = line.get("body") if isinstance(line, dict) else None
        project = model_project(body) if isinstance(body, dict) else None
        if project is not None:
            caller.require(project, "project")
            return project
    raise InvalidRequest("project: required for a key of several projects", param="project")


def _first_line(data: bytes) -> bytes | None:
    for line in data.split(b"\n", 1000)[:1000]:
        if line.strip():
            return line
    return None


def resolve(services: Services, caller: Caller, file_id: str) -> tuple[dict[str, Any], str]:
    """The file object and its S3 key, or 404 (blocking: call from a worker thread)."""
    rt = services.batches()
    match = _BATCH_FILE.match(file_id)
    if match is not None:
        job = rt.table.get(match.group(1))
        if job is None or not can_see(caller, job):
            raise _not_found(file_id)
        which = match.group(2)
        key = job.output_file_key if which == "output" else job.error_file_key
        size = job.output_bytes if which == "output" else job.error_bytes
        if key is None:
            raise _not_found(file_id)
        obj = {
            "id": file_id,
            "object": "file",
            "bytes": size or 0,
            "created_at": int(job.completed_at or job.cancelled_at or job.created_at),
            "filename": f"{job.id}_{which}.jsonl",
            "purpose": "batch_output",
            "status": "processed",
            "project": job.project,
        }
        return obj, key
    record = rt.files.get(file_id) if file_id.startswith("file-") else None
    if record is None or not caller.may_access(record.project):
        raise _not_found(file_id)
    return _arrived(services, record).public(), record.key


def _arrived(services: Services, record: FileRecord) -> FileRecord:
    """A presigned upload: its size once the object is in the bucket."""
    if record.bytes is None:
        rt = services.batches()
        size = rt.blobs.size(record.key)
        if size is not None:
            rt.files.set_bytes(record.id, size)
            record = record.model_copy(update={"bytes": size})
    return record


def _store(services: Services, record: FileRecord, data: bytes) -> None:
    rt = services.batches()
    rt.blobs.put(record.key, data, "application/jsonl")
    rt.files.put(record)


@router.post(
    "/api/v1/files", response_model=FileObject, responses=_ERRORS, summary="Upload a batch input file"
)
async def create_file(
    caller: CallerDep,
    services: ServicesDep,
    file: Annotated[UploadFile, File(description="JSONL, one request per line")],
    purpose: Annotated[str, Form()],
    project: Annotated[str | None, Form(min_length=1, max_length=128)] = None,
) -> FileObject:
    from handler.batch.files import FileRecord, file_key, new_file_id

    if purpose != "batch":
        raise InvalidRequest("purpose: only 'batch' is supported", param="purpose")
    data = await file.read()
    if not data.strip():
        raise InvalidRequest("file: the file is empty", param="file")
    owner = _project_for(caller, project, _first_line(data))
    await asyncio.to_thread(services.completions.config.project, owner)  # 404 for an unknown project
    file_id = new_file_id()
    record = FileRecord(
        id=file_id,
        project=owner,
        filename=file.filename or "input.jsonl",
        key=file_key(owner, file_id),
        bytes=len(data),
    )
    await asyncio.to_thread(_store, services, record, data)
    return FileObject.model_validate(record.public())


@router.post(
    "/api/v1/files/uploads",
    response_model=Upload,
    responses=_ERRORS,
    summary="An upload URL for a file above API Gateway's 10 MB request limit",
)
async def create_upload(body: UploadRequest, caller: CallerDep, services: ServicesDep) -> Upload:
    from handler.batch.files import FileRecord, file_key, new_file_id

    owner = _project_for(caller, body.project, None)
    await asyncio.to_thread(services.completions.config.project, owner)
    file_id = new_file_id()
    record = FileRecord(id=file_id, project=owner, filename=body.filename, key=file_key(owner, file_id))
    rt = services.batches()
    await asyncio.to_thread(rt.files.put, record)
    url = await asyncio.to_thread(rt.blobs.upload_url, record.key, _UPLOAD_URL_S)
    return Upload(
        object="file.upload",
        file=FileObject.model_validate(record.public()),
        url=url,
        method="PUT",
        expires_at=int(time.time()) + _UPLOAD_URL_S,
    )


@router.get(
    "/api/v1/files/{file_id}", response_model=FileObject, responses=_ERRORS, summary="Read a file's object"
)
async def get_file(file_id: str, caller: CallerDep, services: ServicesDep) -> FileObject:
    obj, _ = await asyncio.to_thread(resolve, services, caller, file_id)
    return FileObject.model_validate(obj)


@router.get(
    "/api/v1/files/{file_id}/content",
    response_class=Response,
    responses={
        **_ERRORS,
        200: {
            "content": {"application/jsonl": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The file's bytes",
        },
    },
    summary="A file's content (up to Lambda's 6 MB response; larger: `download_url`)",
)
async def get_file_content(file_id: str, caller: CallerDep, services: ServicesDep) -> Response:
    _, key = await asyncio.to_thread(resolve, services, caller, file_id)
    data = await asyncio.to_thread(services.batches().blobs.get, key)
    return Response(content=data, media_type="application/jsonl")


@router.get(
    "/api/v1/files/{file_id}/download_url",
    response_model=DownloadUrl,
    responses=_ERRORS,
    summary="A presigned GET for a file of any size",
)
async def get_download_url(file_id: str, caller: CallerDep, services: ServicesDep) -> DownloadUrl:
    _, key = await asyncio.to_thread(resolve, services, caller, file_id)
    url = await asyncio.to_thread(services.batches().blobs.download_url, key, _UPLOAD_URL_S)
    return DownloadUrl(
        object="file.download", id=file_id, url=url, expires_at=int(time.time()) + _UPLOAD_URL_S
    )


@router.delete(
    "/api/v1/files/{file_id}",
    response_model=FileDeleted,
    responses=_ERRORS,
    summary="Delete an uploaded file",
)
async def delete_file(file_id: str, caller: CallerDep, services: ServicesDep) -> FileDeleted:
    obj, key = await asyncio.to_thread(resolve, services, caller, file_id)
    if obj["purpose"] != "batch":
        raise InvalidRequest("file_id: a batch's output files stay with the batch", param="file_id")
    rt = services.batches()
    await asyncio.to_thread(rt.blobs.delete, key)
    await asyncio.to_thread(rt.files.delete, file_id)
    return FileDeleted(id=file_id, object="file", deleted=True)
