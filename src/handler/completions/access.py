"""What a caller may read, checked the same way by every read-side service.

Another project's project or completion is answered exactly like one that does not exist (the same
404 and body, `caller.py`): a key cannot tell what lies outside its scope from what is missing. A
project is checked before it is read (so nothing is read for a project outside the key); a stored
completion can only be checked once it is read, since its project is known only then.
"""

from __future__ import annotations

import asyncio

from handler.completions.caller import Caller, missing_project
from handler.config.models import ProjectConfig
from handler.config.source import ConfigSource
from handler.errors import NotFound
from handler.store.base import CompletionStore
from handler.store.records import CompletionRecord


async def open_project(config: ConfigSource, caller: Caller, name: str, param: str) -> ProjectConfig:
    """The project, once `caller` may use it; 404 EntityNotFound naming `param` when it does not
    exist or is not the caller's (the same answer)."""
    caller.require(name, param)
    try:
        return await asyncio.to_thread(config.project, name)
    except NotFound:
        raise missing_project(name, param) from None


def missing_completion(completion_id: str) -> NotFound:
    return NotFound(f"completion {completion_id} does not exist", param="completion_id")


async def open_completion(store: CompletionStore, caller: Caller, completion_id: str) -> CompletionRecord:
    """The stored completion, once `caller` may read its project; 404 when it was never stored or is
    another project's (the same answer)."""
    record = await asyncio.to_thread(store.get_completion, completion_id)
    if record is None or not caller.may_access(record.project):
        raise missing_completion(completion_id)
    return record
