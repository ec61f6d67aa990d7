"""How a project's config is laid out under its SSM path, both ways.

```
{prefix}/projects/{project}/project          {"default_model", "store", "limits"}
{prefix}/projects/{project}/models/{name}    one model's provider settings
{prefix}/projects/{project}/system_prompt    {"template": ...}
{prefix}/projects/{project}/tools/{id}       one server-side tool
{prefix}/projects/{project}/campaigns/{key}  one A/B campaign
```
One parameter per object keeps each well under SSM's 4 KB (standard) / 8 KB (advanced) limit.
"""

from __future__ import annotations

from typing import Any

import orjson

from handler.config.models import ProjectConfig

_COLLECTIONS = ("models", "tools", "campaigns")


def project_path(prefix: str, project: str) -> str:
    return f"{prefix.rstrip('/')}/projects/{project}"


def to_parameters(config: ProjectConfig, prefix: str) -> dict[str, str]:
    """Parameter name -> JSON value for one project."""
    base = project_path(prefix, config.project)
    data = config.model_dump(mode="json", exclude_none=True)
    out: dict[str, str] = {}
    head = {k: data[k] for k in ("default_model", "store", "limits") if k in data}
    out[f"{base}/project"] = orjson.dumps(head).decode()
    if "system_prompt" in data:
        out[f"{base}/system_prompt"] = orjson.dumps(data["system_prompt"]).decode()
    for collection in _COLLECTIONS:
        for name, value in data.get(collection, {}).items():
            out[f"{base}/{collection}/{name}"] = orjson.dumps(value).decode()
    return out


def from_parameters(project: str, params: dict[str, Any]) -> dict[str, Any]:
    """Rebuild the config document from parameters named relative to the project path.

    Values may be JSON strings or already-decoded objects (Powertools' `transform="json"`).
    """
    doc: dict[str, Any] = {"project": project}
    for name, raw in params.items():
        value = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
        parts = name.strip("/").split("/")
        if parts == ["project"]:
            doc.update(value)
        elif parts == ["system_prompt"]:
            doc["system_prompt"] = value
        elif len(parts) == 2 and parts[0] in _COLLECTIONS:
            doc.setdefault(parts[0], {})[parts[1]] = value
    return doc
