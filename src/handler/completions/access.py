"""What a caller may read, checked the same way by every read-side service.

A project is checked before it is read, so that a key cannot probe which projects exist (an unknown
project outside the key's scope is a 403, not a 404). A stored completion can only be checked once
it is read, since its project is known only then; an unknown one is a 404 for everybody.
"""

from __future__ import annotations

import asyncio

from handler.completions.caller import Caller
from handler.config.models import ProjectConfig
from handler.config.source import ConfigSource
from handler.errors import NotFound
from handler.store.base import CompletionStore
from handler.store.records import CompletionRecord


async def open_project(config: ConfigSource, caller: Caller, name: str, param: str) -> ProjectConfig:
    """The project, once `caller` may use it; 404 EntityNotFound naming `param` when it does not exist."""
    caller.require(name)
    try:
        return await asyncio.to_thread(config.project, name)
    except NotFound:
        raise NotFound(f"project {name!r} does not exist", param=param) from None


async def open_completion(store: CompletionStore, caller: Caller, completion_id: str) -> CompletionRecord:
    """The stored completion, once `caller` may read its project; 404 when it was never stored."""
    record = await asyncio.to_thread(store.get_completion, completion_id)
    if record is None:
        raise NotFound(f"completion {completion_id} does not exist", param="completion_id")
    caller.require(record.project)
    return record
