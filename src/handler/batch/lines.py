"""The OpenAI batch format: input lines in, output lines out. Pure functions, no I/O.

Input line:  `{"custom_id": "...", "method": "POST", "url": "/api/v1/chat/completions", "body": {...}}`
Output line: `{"id", "custom_id", "response": {"status_code", "request_id", "body"} | null, "error"}`

A line the batch itself cannot read (not JSON, no or duplicate `custom_id`, wrong method or url, no
body) has `response: null` and an `error`, as in OpenAI's error file. A request the API would refuse or
fail (invalid body, unknown model, upstream failure) keeps the API's own status and body in `response`
and also names the problem in `error`, so `error != null` selects every failed line.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from handler.contract.errors import line_error

CHAT_URLS = frozenset({"/api/v1/chat/completions", "/v1/chat/completions"})
_NAMESPACE = uuid.UUID("6f0d3c9e-5b1a-4c8e-9a55-2f4a1d7b9c31")


def stable_uuid(*parts: str) -> uuid.UUID:
    """The same id for the same work, however many times it is redelivered."""
    return uuid.uuid5(_NAMESPACE, "#".join(parts))


def request_id_for(seed: str) -> str:
    return f"chatcmpl-{stable_uuid(seed, 'request').hex}"


def choice_ids_for(seed: str, n: int) -> list[str]:
    return [str(stable_uuid(seed, "choice", str(i))) for i in range(n)]


@dataclass
class Work:
    """One input line as the splitter hands it to a worker (`index` counts every line from 0, blank ones too)."""

    index: int
    custom_id: str | None = None
    body: dict[str, Any] | None = None
    error: tuple[str, str] | None = None  # (code, message): the line is refused before any request
    part: str | None = None  # S3 key of a body too large for a queue message

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"i": self.index, "custom_id": self.custom_id}
        if self.error is not None:
            out["error"] = list(self.error)
        elif self.part is not None:
            out["part"] = self.part
        else:
            out["body"] = self.body
        return out

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Work:
        error = data.get("error")
        return cls(
            index=int(data["i"]),
            custom_id=data.get("custom_id"),
            body=data.get("body"),
            error=(str(error[0]), str(error[1])) if error else None,
            part=data.get("part"),
        )


class LineChecker:
    """Reads input lines in order; remembers every custom_id so that a repeated one is refused."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def check(self, index: int, raw: bytes) -> Work:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return Work(index, error=("invalid_json", "line is not valid JSON"))
        if not isinstance(obj, dict):
            return Work(index, error=("invalid_line", "line must be a JSON object"))
        custom_id = obj.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            return Work(index, error=("missing_custom_id", "custom_id: required, a non-empty string"))
        if custom_id in self.seen:
            return Work(
                index,
                custom_id,
                error=("duplicate_custom_id", f"custom_id {custom_id!r} is used by an earlier line"),
            )
        self.seen.add(custom_id)
        method = obj.get("method", "POST")
        if method != "POST":
            return Work(index, custom_id, error=("invalid_method", "method: only POST is supported"))
        url = obj.get("url", "/api/v1/chat/completions")
        if url not in CHAT_URLS:
            return Work(
                index, custom_id, error=("invalid_url", "url: only /api/v1/chat/completions is supported")
            )
        body = obj.get("body")
        if not isinstance(body, dict):
            return Work(index, custom_id, error=("invalid_body", "body: required, a JSON object"))
        return Work(index, custom_id, body=body)


def model_project(body: dict[str, Any]) -> str | None:
    """The project a request body names (`{project}` or `{project}/{model}`), if it names one."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return None
    return model.partition("/")[0] or None


def _line_id(seed: str) -> str:
    return f"batch_req_{stable_uuid(seed, 'line').hex}"


def response_line(seed: str, custom_id: str | None, request_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": _line_id(seed),
        "custom_id": custom_id,
        "response": {"status_code": 200, "request_id": request_id, "body": body},
        "error": None,
    }


def http_error_line(
    seed: str, custom_id: str | None, request_id: str | None, status: int, body: dict[str, Any]
) -> dict[str, Any]:
    """A request the API answered with an error: the same status and body as a live call."""
    err = body.get("error") or {}
    return {
        "id": _line_id(seed),
        "custom_id": custom_id,
        "response": {"status_code": status, "request_id": request_id, "body": body},
        "error": line_error(err.get("code"), err.get("message")),
    }


def batch_error_line(seed: str, custom_id: str | None, code: str, message: str) -> dict[str, Any]:
    """A line that never became a request."""
    return {
        "id": _line_id(seed),
        "custom_id": custom_id,
        "response": None,
        "error": line_error(code, message),
    }


def is_success(line: dict[str, Any]) -> bool:
    return line.get("error") is None


def dumps(line: dict[str, Any]) -> str:
    return orjson.dumps(line).decode()


class Packer:
    """Groups wire lines into messages of at most `max_lines` lines and about `max_bytes` bytes.

    Deterministic: the same file always packs into the same messages, so a re-split after a crash
    sends the same groups again (see `jobs.BatchTable.record_results`).
    """

    def __init__(self, max_lines: int, max_bytes: int) -> None:
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self._current: list[dict[str, Any]] = []
        self._size = 0

    def add(self, work: dict[str, Any]) -> list[dict[str, Any]] | None:
        """Add a line; returns the previous group when this line starts a new one."""
        n = len(orjson.dumps(work))
        full = None
        if self._current and (len(self._current) >= self.max_lines or self._size + n > self.max_bytes):
            full = self.flush()
        self._current.append(work)
        self._size += n
        return full

    def flush(self) -> list[dict[str, Any]] | None:
        group, self._current, self._size = self._current or None, [], 0
        return group
