"""Who is asking: the projects a caller may use. Built by the entrypoint (an API key's scope, a
batch's project) and handed to the services explicitly, so no service reaches into a request."""

from __future__ import annotations

from dataclasses import dataclass

from handler.config.models import Quotas
from handler.errors import Forbidden

_DENIED = "this API key is not allowed to access project {project!r}"


@dataclass(frozen=True)
class Caller:
    projects: frozenset[str] | None  # None: every project (the dev key, an unscoped batch)
    denied: str = _DENIED  # the refusal, formatted with the project asked for
    key_id: str | None = None  # the API key asking: its quotas and usage (None: a batch)
    key_quotas: Quotas | None = None  # that key's limits (completions/quotas.py); None: unlimited

    @classmethod
    def anyone(cls) -> Caller:
        return cls(None)

    @classmethod
    def of_batch(cls, project: str | None) -> Caller:
        """A batch belongs to one project: a line naming another is refused like a scoped key."""
        if project is None:
            return cls(None)
        owner = project.replace("{", "{{").replace("}", "}}")
        return cls(
            frozenset({project}),
            f"this batch belongs to project {owner!r}; the request names project {{project!r}}",
        )

    def may_access(self, project: str) -> bool:
        return self.projects is None or project in self.projects

    def require(self, project: str) -> None:
        """Raise Forbidden unless this caller may use `project`."""
        if not self.may_access(project):
            raise Forbidden(self.denied.format(project=project))
