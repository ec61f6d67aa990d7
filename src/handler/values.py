"""Value types that sibling layers share, so that neither has to import the other.

`ToolRun` is produced by the tool loop (completions, reported through the provider port's
`ToolRunsReport` event) and kept, as is, in the stored completion record (store). Providers and
store are siblings that never import each other, so the one definition lives here, below both.
Nothing in this module imports anything of the gateway's.
"""

from __future__ import annotations

from pydantic import BaseModel


class ToolRun(BaseModel):
    """One server-side tool call the gateway ran: what the model asked, what the tool answered.

    Its fields are the stored record's `tool_runs[]` (and the API's, which returns records as stored).
    A run never raises: a failure is `error`, which the model is shown as the tool's result.
    """

    id: str
    name: str
    arguments: str  # JSON text, as the model sent it
    result: str | None = None
    error: str | None = None
    duration_ms: float = 0.0
    round: int = 0  # the tool-loop round the call was made in (the loop counts from 1)
