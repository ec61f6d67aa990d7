"""Reading project config and secrets from SSM Parameter Store.

A project is read with `GetParametersByPath` (recursive, decrypted) and its validated `ProjectConfig`
cached for `CONFIG_MAX_AGE_S`, so a warm request neither calls SSM nor re-validates the config.
Plain botocore calls with a small TTL cache, the same semantics as Powertools Parameters'
`get_multiple(max_age=...)`: importing Powertools Parameters pulls boto3 and s3transfer into every
cold start (with boto3's session, ~60 ms of CPU) for two API calls.
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
    def project(self, name: str) -> ProjectConfig: ...

    def secret(self, name: str) -> str: ...


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
        self._projects: dict[str, tuple[float, ProjectConfig]] = {}  # name -> (expires at, config)
        self._secrets: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def _ssm(self) -> Any:
        if self._client is None:
            from handler import aws

            self._client = aws.client("ssm")
        return self._client

    def cached(self, name: str) -> ProjectConfig | None:
        """The config while its cached copy is fresh, else None. No I/O, so a warm request can skip
        the worker-thread hop that `project()` needs (it may call SSM)."""
        entry = self._projects.get(name)
        if entry is not None and time.monotonic() < entry[0]:
            return entry[1]
        return None

    def _parameters(self, path: str) -> dict[str, str]:
        """Every parameter under `path`, named relative to it (`project`, `models/echo`, ...)."""
        kwargs: dict[str, Any] = {"Path": path, "Recursive": True, "WithDecryption": True}
        out: dict[str, str] = {}
        while True:
            page = self._ssm().get_parameters_by_path(**kwargs)
            for parameter in page.get("Parameters", []):
                out[parameter["Name"][len(path) :].lstrip("/")] = parameter["Value"]
            if not page.get("NextToken"):
                return out
            kwargs["NextToken"] = page["NextToken"]

    def project(self, name: str) -> ProjectConfig:
        if not _PROJECT_NAME.match(name):
            raise NotFound(f"project {name!r} does not exist", param="model")
        cached = self.cached(name)
        if cached is not None:
            return cached
        fetched_at = time.monotonic()
        raw = self._parameters(project_path(self._prefix, name))
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

    def secret(self, name: str) -> str:
        entry = self._secrets.get(name)
        if entry is not None and time.monotonic() < entry[0]:
            return entry[1]
        fetched_at = time.monotonic()
        value: str = self._ssm().get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        if self._max_age_s > 0:
            with self._lock:
                self._secrets[name] = (fetched_at + self._max_age_s, value)
        return value
