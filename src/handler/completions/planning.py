"""From a validated wire request to a `Plan`: project and model resolved, limits applied, system
prompt rendered, provider-neutral call built. Everything a request can get wrong is found here,
before any model is called or anything is stored.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from handler.completions.model_features import check_model_features
from handler.config.models import Limits, ModelConfig, ProjectConfig
from handler.contract.chat import ChatRequest, ImagePart, Message, TextPart
from handler.errors import InvalidRequest, NotFound
from handler.providers.base import ModelCall, ToolSpec
from handler.store.counting import Scope


@dataclass(frozen=True)
class Step:
    """One model of the chain a request tries: the model, its retries, its own TTFT window."""

    model_name: str
    max_retries: int
    deadline_ms: int | None  # None: no deadline
    # The model's `timeouts` (completions/deadlines.py), else the settings' defaults; not part of
    # what makes two steps the same step (the model, its retries, its TTFT window).
    first_byte_s: float | None = field(default=None, compare=False)
    idle_s: float | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Overrides:
    """What a caller other than a live client fixes in advance (batch workers: the store is always
    on, and ids derive from the line, so that a redelivered request rewrites the same records)."""

    store: bool | None = None
    request_id: str | None = None
    choice_ids: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Plan:
    """Everything decided about a request before any model is called. Never changed afterwards."""

    request_id: str
    created: int
    received_at: float  # perf_counter() at arrival: the TTFT clock starts here
    session_id: str
    project: ProjectConfig
    model_name: str
    chain: tuple[Step, ...]  # the model, then its fallbacks in order, no repeats
    call: ModelCall
    store: bool
    labels: dict[str, str]
    tags: list[str]
    user: str | None
    params: dict[str, Any]
    messages: list[dict[str, Any]]
    parent_completion_ids: list[str]
    choice_ids: tuple[str, ...]  # one completion id per choice
    stream: bool = False
    include_usage: bool = False
    campaign: str | None = None
    variant: str | None = None
    server_tools: tuple[str, ...] = ()
    # Wall-clock time the request was planned: the records' `created`, so that a session lists its
    # completions in the order the requests came, not the order they finished.
    started_at: float = field(default_factory=time.time)
    key_id: str | None = None  # the API key that asked (service.plan sets it): records, usage, quotas
    quota_scopes: tuple[Scope, ...] = ()  # the key's and the project's limits, charged at the end

    @property
    def project_name(self) -> str:
        return self.project.project

    @property
    def deadline_ms(self) -> int | None:
        """The first model's TTFT window."""
        return self.chain[0].deadline_ms

    def public_model(self, model_name: str) -> str:
        return f"{self.project.project}/{model_name}"


def split_model(model: str) -> tuple[str, str | None]:
    project, sep, name = model.partition("/")
    if not project or (sep and not name):
        raise InvalidRequest("model must be '{project}' or '{project}/{model}'", param="model")
    return project, name or None


def resolve_model(project: ProjectConfig, name: str | None) -> tuple[str, ModelConfig]:
    if name is None:
        name = project.default_model
    model = project.models.get(name)
    if model is None:
        raise NotFound(f"model {name!r} does not exist in project {project.project!r}", param="model")
    return name, model


def enforce_limits(req: ChatRequest, limits: Limits) -> None:
    """Each limit refused with a 400 that names the field and the limit."""

    def over(param: str, what: str, limit: int) -> InvalidRequest:
        return InvalidRequest(f"{param}: {what} exceeds the project's limit of {limit}", param=param)

    if req.effective_n > limits.max_n:
        raise over("n", f"n={req.effective_n}", limits.max_n)
    max_tokens = req.effective_max_tokens
    if max_tokens is not None and max_tokens > limits.max_tokens:
        raise over("max_tokens", f"max_tokens={max_tokens}", limits.max_tokens)
    if len(req.messages) > limits.max_messages:
        raise over("messages", f"{len(req.messages)} messages", limits.max_messages)
    for i, message in enumerate(req.messages):
        if len(message.text()) > limits.max_message_chars:
            raise over(f"messages[{i}].content", "the message length", limits.max_message_chars)
    stops = req.stop_list
    if len(stops) > limits.max_stop:
        raise over("stop", f"{len(stops)} stop sequences", limits.max_stop)
    for stop in stops:
        if len(stop) > limits.max_stop_chars:
            raise over("stop", "a stop sequence's length", limits.max_stop_chars)
    labels = req.all_labels
    if len(labels) > limits.max_labels:
        raise over("labels", f"{len(labels)} labels", limits.max_labels)
    for key, value in labels.items():
        if len(key) > limits.max_label_chars or len(value) > limits.max_label_chars:
            raise over("labels", "a label's key or value length", limits.max_label_chars)
    tags = req.tags or []
    if len(tags) > limits.max_tags:
        raise over("tags", f"{len(tags)} tags", limits.max_tags)
    for tag in tags:
        if len(tag) > limits.max_tag_chars:
            raise over("tags", "a tag's length", limits.max_tag_chars)


def _wire_content(message: Message) -> str | list[dict[str, Any]] | None:
    if message.content is None or isinstance(message.content, str):
        return message.content
    parts: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, TextPart):
            parts.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            parts.append({"type": "image_url", "image_url": {"url": part.url}})
    return parts


def provider_message(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": _wire_content(message)}
    if message.name is not None:
        out["name"] = message.name
    if message.tool_calls:
        out["tool_calls"] = [c.model_dump() for c in message.tool_calls]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if message.reasoning_content is not None:
        out["reasoning_content"] = message.reasoning_content
    if message.thinking_blocks:
        out["thinking_blocks"] = [b.model_dump(exclude_none=True) for b in message.thinking_blocks]
    return out


def system_prompt(project: ProjectConfig, req: ChatRequest) -> str | None:
    """The project's rendered template first, then the request's own system/developer messages."""
    parts: list[str] = []
    if project.system_prompt is not None:
        # Imported here: Jinja costs tens of ms of cold start, paid only by projects with a template.
        from handler.config.templates import render_system_prompt

        rendered = render_system_prompt(project.system_prompt.template, req.system_prompt_args)
        if rendered:
            parts.append(rendered)
    parts.extend(m.text() for m in req.messages if m.role in ("system", "developer") and m.text())
    return "\n\n".join(parts) or None


def deadline_ms(req: ChatRequest, project: ProjectConfig, model: ModelConfig) -> int | None:
    """Request, else model, else project. `max_ttft_ms: 0` on a request turns the deadline off."""
    if req.max_ttft_ms is not None:
        return req.max_ttft_ms or None
    return model.max_ttft_ms or project.limits.max_ttft_ms


def model_chain(req: ChatRequest, project: ProjectConfig, model_name: str) -> tuple[Step, ...]:
    """The model, then its fallbacks in order (each with its own retries and window), no repeats."""
    names = list(dict.fromkeys([model_name, *project.models[model_name].fallbacks]))
    from handler.settings import get_settings

    settings = get_settings()
    steps = []
    for name in names:
        model = project.models[name]
        timeouts = model.timeouts
        steps.append(
            Step(
                name,
                model.max_retries,
                deadline_ms(req, project, model),
                first_byte_s=timeouts.first_byte_s or settings.model_first_byte_timeout_s,
                idle_s=timeouts.idle_s or settings.model_idle_timeout_s,
            )
        )
    return tuple(steps)


def server_tools(req: ChatRequest, project: ProjectConfig) -> list[str]:
    """The project's tools this request turns on: `use_tools: false` turns all off; a `tools`
    switch overrides a tool's configured `enabled`; an unknown tool id is a 400."""
    switches = {t.id: t.enabled for t in req.tool_switches}
    unknown = sorted(set(switches) - set(project.tools))
    if unknown:
        raise InvalidRequest(f"tools: unknown tool id {unknown[0]!r} for this project", param="tools")
    if req.use_tools is False:
        return []
    enabled = [tool_id for tool_id, tool in project.tools.items() if switches.get(tool_id, tool.enabled)]
    clash = sorted({t.function.name for t in req.function_tools} & set(enabled))
    if clash:
        raise InvalidRequest(
            f"tools: function {clash[0]!r} has the name of one of the project's server-side tools; "
            "rename it, or switch the server-side tool off for this request",
            param="tools",
        )
    return enabled


def build_plan(
    req: ChatRequest, project: ProjectConfig, received_at: float, overrides: Overrides | None = None
) -> Plan:
    """The frozen plan of one request: from the wire request, the project's config and `overrides`."""
    from handler.completions.campaigns import route

    _, requested = split_model(req.model)
    routing = route(
        project, requested, req.ab_campaign, str(req.session_id) if req.session_id else None, req.user
    )
    model_name, model = resolve_model(project, routing.model_name)
    enforce_limits(req, project.limits)
    check_model_features(req, model)
    tool_ids = server_tools(req, project)

    conversation = [m for m in req.messages if m.role not in ("system", "developer")]
    if not conversation:
        raise InvalidRequest("messages: needs at least one non-system message", param="messages")
    messages = [provider_message(m) for m in req.messages]
    max_tokens = req.effective_max_tokens
    call = ModelCall(
        messages=[provider_message(m) for m in conversation],
        system=system_prompt(project, req),
        max_tokens=max_tokens if max_tokens is not None else project.limits.max_tokens,
        temperature=req.temperature,
        top_p=req.top_p,
        stop=req.stop_list,
        n=req.effective_n,
        seed=req.seed,
        presence_penalty=req.presence_penalty,
        frequency_penalty=req.frequency_penalty,
        response_format=req.response_format,
        tools=[
            *(
                ToolSpec(
                    name=tool_id,
                    description=project.tools[tool_id].description,
                    parameters=project.tools[tool_id].input_schema,
                )
                for tool_id in tool_ids
            ),
            *(
                ToolSpec(
                    name=t.function.name,
                    description=t.function.description or "",
                    parameters=t.function.parameters or {"type": "object", "properties": {}},
                )
                for t in req.function_tools
            ),
        ],
        tool_choice=req.tool_choice,
        parallel_tool_calls=req.parallel_tool_calls,
        reasoning_effort=req.reasoning_effort,
    )
    params = {
        k: v
        for k, v in {
            "max_tokens": req.effective_max_tokens,
            "temperature": req.temperature,
            "top_p": req.top_p,
            "stop": req.stop_list or None,
            "n": req.effective_n,
            "seed": req.seed,
            "presence_penalty": req.presence_penalty,
            "frequency_penalty": req.frequency_penalty,
            "response_format": req.response_format,
            "reasoning_effort": req.reasoning_effort,
            "max_ttft_ms": req.max_ttft_ms,
            "stream": bool(req.stream),
            "use_tools": req.use_tools,
            "ab_campaign": req.ab_campaign,
            "tools": [t.model_dump() for t in req.tools] if req.tools else None,
            "system_prompt_args": req.system_prompt_args,
        }.items()
        if v is not None
    }
    fixed = overrides or Overrides()
    n = req.effective_n
    if fixed.choice_ids is not None and len(fixed.choice_ids) != n:
        raise ValueError("overrides.choice_ids must hold one id per choice")
    return Plan(
        request_id=fixed.request_id or f"chatcmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
        received_at=received_at,
        session_id=str(req.session_id or uuid.uuid4()),
        project=project,
        model_name=model_name,
        chain=model_chain(req, project, model_name),
        call=call,
        store=fixed.store if fixed.store is not None else project.store if req.store is None else req.store,
        labels=req.all_labels,
        tags=list(req.tags or []),
        user=req.user,
        params=params,
        messages=messages,
        parent_completion_ids=[str(m.completion_id) for m in req.messages if m.completion_id],
        choice_ids=fixed.choice_ids or tuple(str(uuid.uuid4()) for _ in range(n)),
        stream=bool(req.stream),
        include_usage=req.include_usage,
        campaign=routing.campaign,
        variant=routing.variant,
        server_tools=tuple(tool_ids),
    )
