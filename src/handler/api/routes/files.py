"""OpenAI's Files API for batch input and output (`client.files`): upload, list, read, download,
delete.

A file belongs to one project, and another project's file answers exactly like one that does not
exist (404). Uploads are `multipart/form-data` (what the openai SDK sends) up to `MAX_BODY_BYTES`;
API Gateway takes at most 10 MB per request, so a larger file goes straight to the bucket through
`POST /api/v1/files/uploads` (a presigned S3 PUT). A batch's output and error files are files too
(`file-batch-{batch_id}-output` / `-errors`), readable by the keys that may read the batch.

The list (`client.files.list`) is OpenAI's cursor page over the key's own projects' files, newest
first: a Query of each project's partitions (`batch.files.FileTable.page`), never a Scan. Its
`after` is a file id the key can read; any other id is a 400 naming `after`, as the batch list
answers, so another project's file id tells nothing.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from handler.api.auth import CallerDep
from handler.api.deps import Services, ServicesDep
from handler.api.openapi import error_docs
from handler.completions.caller import Caller
from handler.errors import InvalidRequest, NotFound

if TYPE_CHECKING:
    from handler.batch.files import FileRecord
    from handler.batch.jobs import BatchJob

router = APIRouter()

_BATCH_FILE = re.compile(r"^file-batch-([0-9a-f-]{36})-(output|errors)$")
_UPLOAD_URL_S = 3600
# OpenAI's file purposes: a filter on one this gateway never stores lists nothing; any other is a 400.
_OPENAI_PURPOSES = (
    "assistants",
    "assistants_output",
    "batch",
    "batch_output",
    "fine-tune",
    "fine-tune-results",
    "vision",
    "user_data",
    "evals",
)
_MAX_LIST = 10_000  # OpenAI's bound on `limit`, and its default
_ERRORS = error_docs(400, (404, "No such file for this key (`EntityNotFound:`)"))


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


class FileList(BaseModel):
    object: Literal["list"]
    data: list[FileObject]  # newest first (`order=desc`), or oldest first
    first_id: str | None
    last_id: str | None  # pass as `after` for the next page
    has_more: bool


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
        from handler.batch.files import batch_file

        at = job.completed_at or job.cancelled_at or job.created_at
        output = batch_file(job.id, which, job.project or "", key, size or 0, at)
        return {**output.public(), "project": job.project}, key
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


def _after_key(services: Services, caller: Caller, after: str) -> str:
    """Where the page starts: after the file `after`, which this key must be able to read."""
    record = services.batches().files.get(after) if after.startswith("file-") else None
    if record is None or not caller.may_access(record.project):
        raise InvalidRequest("after: not a file id returned by this endpoint", param="after")
    return record.sort_key


def _list(
    services: Services,
    caller: Caller,
    project: str | None,
    purposes: tuple[str, ...],
    limit: int,
    after: str | None,
    ascending: bool,
) -> tuple[list[FileRecord], bool]:
    """Blocking (reads the table and, for a key of every project, the project list)."""
    start = _after_key(services, caller, after) if after is not None else None
    if project is not None:
        caller.require(project, "project")
        projects: list[str] = [project]
    elif caller.projects is not None:
        projects = sorted(caller.projects)
    else:
        projects = services.completions.config.project_names()
    if not purposes or not projects:
        return [], False
    rt = services.batches()
    records, more = rt.files.page(projects, purposes, limit, after=start, ascending=ascending)
    return [_arrived(services, r) for r in records], more


@router.get(
    "/api/v1/files",
    response_model=FileList,
    responses=_ERRORS,
    summary="List the key's files (uploads and batch output), newest first",
)
async def list_files(
    caller: CallerDep,
    services: ServicesDep,
    purpose: Annotated[str | None, Query(description="only files of this purpose")] = None,
    limit: Annotated[int, Query(ge=1, le=_MAX_LIST)] = _MAX_LIST,
    after: Annotated[str | None, Query(description="the `last_id` of the previous page")] = None,
    order: Annotated[Literal["asc", "desc"], Query(description="by `created_at`")] = "desc",
    project: Annotated[
        str | None, Query(min_length=1, max_length=128, description="only this project's files")
    ] = None,
) -> FileList:
    from handler.batch.files import PURPOSES

    if purpose is not None and purpose not in _OPENAI_PURPOSES:
        raise InvalidRequest(f"purpose: must be one of {', '.join(_OPENAI_PURPOSES)}", param="purpose")
    purposes = PURPOSES if purpose is None else tuple(p for p in PURPOSES if p == purpose)
    records, more = await asyncio.to_thread(
        _list, services, caller, project, purposes, limit, after, order == "asc"
    )
    data = [FileObject.model_validate(r.public()) for r in records]
    return FileList(
        object="list",
        data=data,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
        has_more=more,
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
