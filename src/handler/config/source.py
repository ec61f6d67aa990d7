"""Reading project config and secrets from SSM Parameter Store, through Powertools Parameters.

A project is read with `SSMProvider.get_multiple` (SSM's `GetParametersByPath`, recursive,
decrypted, cached for `CONFIG_MAX_AGE_S`) and its validated `ProjectConfig` is cached for as long,
so a warm request neither calls SSM nor re-validates the config, and `cached()` lets it skip the
worker-thread hop too. The provider gets our shared botocore client: no boto3 session is built.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any, Protocol

from pydantic import ValidationError

from handler.config.layout import from_parameters, project_path
from handler.config.models import NAME_RE, ProjectConfig
from handler.errors import ConfigError, NotFound

_PROJECT_NAME = re.compile(NAME_RE)


class ConfigSource(Protocol):
    def project(self, name: str) -> ProjectConfig:
        """The project's config, read (and validated) when not fresh in cache; may block on I/O."""

    def cached(self, name: str) -> ProjectConfig | None:
        """The config while fresh in cache, else None; never does I/O."""

    def secret(self, name: str) -> str: ...

    def project_names(self) -> list[str]:
        """Every project there is (for keys that may use all of them), sorted; may block on I/O."""


def describe_validation_error(exc: ValidationError) -> str:
    """`field.path: message` for each error, the way users read config problems."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


class SSMConfigSource:
    def __init__(self, prefix: str, max_age_s: int, ssm_client: Any = None) -> None:
        self._prefix = prefix
        self._max_age_s = max_age_s
        self._client = ssm_client
        self._provider: Any = None
        self._projects: dict[str, tuple[float, ProjectConfig]] = {}  # name -> (expires at, config)
        self._lock = threading.Lock()
        self._names: tuple[float, list[str]] | None = None

    def _ssm(self) -> Any:
        if self._provider is None:
            from aws_lambda_powertools.utilities.parameters import SSMProvider

            from handler import aws

            self._provider = SSMProvider(boto3_client=self._client or aws.client("ssm"))
        return self._provider

    def cached(self, name: str) -> ProjectConfig | None:
        """The config while its cached copy is fresh, else None. No I/O, so a warm request can skip
        the worker-thread hop that `project()` needs (it may call SSM)."""
        entry = self._projects.get(name)
        if entry is not None and time.monotonic() < entry[0]:
            return entry[1]
        return None

    def project(self, name: str) -> ProjectConfig:
        if not _PROJECT_NAME.match(name):
            raise NotFound(f"project {name!r} does not exist", param="model")
        cached = self.cached(name)
        if cached is not None:
            return cached
        fetched_at = time.monotonic()
        raw = self._ssm().get_multiple(
            project_path(self._prefix, name), recursive=True, decrypt=True, max_age=self._max_age_s
        )
        if not raw:
            raise NotFound(f"project {name!r} does not exist", param="model")
        try:
            config = ProjectConfig.model_validate(from_parameters(name, raw))
        except (ValidationError, ValueError) as exc:
            detail = describe_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
            raise ConfigError(f"project {name!r} has an invalid config in SSM: {detail}") from exc
        if self._max_age_s > 0:
            with self._lock:
                self._projects[name] = (fetched_at + self._max_age_s, config)
        return config

    def project_names(self) -> list[str]:
        """Every project under the prefix (for keys that may use all of them), sorted; cached like
        a project's config."""
        entry = self._names
        if entry is not None and time.monotonic() < entry[0]:
            return entry[1]
        from handler import aws

        client = self._client or aws.client("ssm")
        base = project_path(self._prefix, "")
        names: set[str] = set()
        for page in client.get_paginator("get_parameters_by_path").paginate(
            Path=base.rstrip("/"), Recursive=True
        ):
            for param in page.get("Parameters", []):
                name = str(param["Name"])[len(base) :].partition("/")[0]
                if _PROJECT_NAME.match(name):
                    names.add(name)
        found = sorted(names)
        if self._max_age_s > 0:
            self._names = (time.monotonic() + self._max_age_s, found)
        return found

    def secret(self, name: str) -> str:
        """A SecureString, decrypted; Powertools caches it for the same max age as config."""
        value: str = self._ssm().get(name, decrypt=True, max_age=self._max_age_s)
        return value
