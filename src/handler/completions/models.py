"""The models a caller may use, as OpenAI's Models API lists them (`client.models.list()`).

Each project the caller may use gives its `{project}` alias (what `model: "{project}"` routes to: the
project's default model, or its active campaign) and one `{project}/{model}` per configured model.
Another project's model answers exactly like one that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from handler.completions.caller import Caller
from handler.config.models import ProjectConfig
from handler.config.source import ConfigSource
from handler.errors import NotFound

# The config has no creation time; OpenAI's field is required, so it is the epoch.
_CREATED = 0


def _entries(config: ProjectConfig) -> list[dict[str, Any]]:
    project = config.project
    alias = {
        "id": project,
        "object": "model",
        "created": _CREATED,
        "owned_by": project,
        "default_model": f"{project}/{config.default_model}",
    }
    return [alias] + [
        {"id": f"{project}/{name}", "object": "model", "created": _CREATED, "owned_by": project}
        for name in sorted(config.models)
    ]


class ModelsService:
    def __init__(self, config: ConfigSource, project_names: Callable[[], list[str]]) -> None:
        self.config = config
        self._names = project_names

    def _projects(self, caller: Caller) -> list[ProjectConfig]:
        names = sorted(caller.projects) if caller.projects is not None else self._names()
        found = []
        for name in names:
            try:
                found.append(self.config.project(name))
            except NotFound:
                continue  # a key may be scoped to a project that was removed since
        return found

    def list(self, caller: Caller) -> list[dict[str, Any]]:
        """Blocking (reads config): call from a worker thread."""
        return [entry for config in self._projects(caller) for entry in _entries(config)]

    def get(self, caller: Caller, model_id: str) -> dict[str, Any]:
        project = model_id.partition("/")[0]
        if project and caller.may_access(project):
            try:
                config = self.config.project(project)
            except NotFound:
                config = None
            for entry in _entries(config) if config is not None else []:
                if entry["id"] == model_id:
                    return entry
        raise NotFound(f"model {model_id!r} does not exist", param="model")
