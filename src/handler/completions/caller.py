"""Who is asking: the projects a caller may use. Built by the entrypoint (an API key's scope, a
batch's project) and handed to the services explicitly, so no service reaches into a request.

Another project's project, completion, session, campaign or batch is answered exactly like one that
does not exist (the same 404 and body): a key learns nothing of what lies outside its scope, not
even that it exists. `missing_project` is that one answer for a project.
"""

from __future__ import annotations

from dataclasses import dataclass

from handler.config.models import Quotas
from handler.errors import NotFound


def missing_project(project: str, param: str = "model") -> NotFound:
    """The 404 for a project that does not exist, and for one the caller may not see."""
    return NotFound(f"project {project!r} does not exist", param=param)


@dataclass(frozen=True)
class Caller:
    projects: frozenset[str] | None  # None: every project (the dev key, an unscoped batch)
    key_id: str | None = None  # the API key asking: its quotas and usage (None: a batch)
    key_quotas: Quotas | None = None  # that key's limits (completions/quotas.py); None: unlimited

    @classmethod
    def anyone(cls) -> Caller:
        return cls(None)

    @classmethod
    def of_batch(cls, project: str | None) -> Caller:
        """A batch belongs to one project: a line naming another finds no such project."""
        return cls(None if project is None else frozenset({project}))

    def may_access(self, project: str) -> bool:
        return self.projects is None or project in self.projects

    def require(self, project: str, param: str = "model") -> None:
        """Raise the missing-project 404 (naming `param`) unless this caller may use `project`."""
        if not self.may_access(project):
            raise missing_project(project, param)
