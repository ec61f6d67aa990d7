"""Config files (YAML or JSON, one project each): load, validate, and write to SSM.

Operator tooling (`gatewayctl config`, `make dev`): no function reads a file, so PyYAML stays out of
the layer.

A bad file is refused with the offending field named, before anything is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from handler.config.layout import project_path, to_parameters
from handler.config.models import ProjectConfig
from handler.config.source import describe_validation_error


class ConfigFileError(ValueError):
    """A config file that cannot be used, with the file and the field named."""


def load_file(path: Path) -> ProjectConfig:
    import yaml

    try:
        data: Any = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigFileError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigFileError(f"{path}: expected a mapping at the top level")
    data.setdefault("project", path.stem)
    try:
        return ProjectConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigFileError(f"{path}: {describe_validation_error(exc)}") from exc


def load_dir(directory: Path) -> list[ProjectConfig]:
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml"), *directory.glob("*.json")])
    return [load_file(f) for f in files]


def push(config: ProjectConfig, prefix: str, ssm: Any, *, prune: bool = True) -> list[str]:
    """Write a project's parameters; with `prune`, delete ones the file no longer has.

    Parameters holding secrets are not here: they are SecureStrings the operator creates, and the
    config names them (`api_key_param`, `auth_param`).
    """
    params = to_parameters(config, prefix)
    for name, value in params.items():
        ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True, Tier="Intelligent-Tiering")
    if prune:
        existing: list[str] = []
        paginator = ssm.get_paginator("get_parameters_by_path")
        for page in paginator.paginate(Path=project_path(prefix, config.project), Recursive=True):
            existing.extend(p["Name"] for p in page.get("Parameters", []))
        stale = [n for n in existing if n not in params]
        for start in range(0, len(stale), 10):
            ssm.delete_parameters(Names=stale[start : start + 10])
    return sorted(params)
