"""Project configuration: what a platform team writes in `config/<project>.yaml` and keeps in SSM.

One model validates both the YAML file (before anything is written) and what is read back from SSM,
so that a config the command accepted is a config the gateway can serve.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
_NAME = re.compile(NAME_RE)
TOOL_NAME_RE = r"^[A-Za-z0-9_-]{1,64}$"
_TOOL_NAME = re.compile(TOOL_NAME_RE)


class _Strict(BaseModel):
    # Unknown keys are refused: a typo in a config file must be named, not silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limits(_Strict):
    """Per-project limits. Each has a default; a project may raise or lower it."""

    max_tokens: Annotated[int, Field(ge=1)] = 4096
    max_n: Annotated[int, Field(ge=1, le=128)] = 8
    max_ttft_ms: Annotated[int, Field(ge=1)] | None = None
    max_messages: Annotated[int, Field(ge=1)] = 500
    max_message_chars: Annotated[int, Field(ge=1)] = 200_000
    max_stop: Annotated[int, Field(ge=0)] = 8
    max_stop_chars: Annotated[int, Field(ge=1)] = 256
    max_labels: Annotated[int, Field(ge=0)] = 32
    max_label_chars: Annotated[int, Field(ge=1)] = 256
    max_tags: Annotated[int, Field(ge=0)] = 32
    max_tag_chars: Annotated[int, Field(ge=1)] = 128
    max_tool_rounds: Annotated[int, Field(ge=1, le=32)] = 5
    # Quotas on the whole project (completions/quotas.py); unset: unlimited. An API key has its own.
    requests_per_minute: Annotated[int, Field(ge=1)] | None = None
    tokens_per_minute: Annotated[int, Field(ge=1)] | None = None
    tokens_per_day: Annotated[int, Field(ge=1)] | None = None
    usd_per_month: Annotated[float, Field(gt=0)] | None = None


class Quotas(_Strict):
    """An API key's quotas (the same four a project's `limits` may set); unset: unlimited."""

    requests_per_minute: Annotated[int, Field(ge=1)] | None = None
    tokens_per_minute: Annotated[int, Field(ge=1)] | None = None
    tokens_per_day: Annotated[int, Field(ge=1)] | None = None
    usd_per_month: Annotated[float, Field(gt=0)] | None = None


class Prices(_Strict):
    """USD per million tokens. Cache reads and writes cost the input price unless set."""

    input: Annotated[float, Field(ge=0)]
    output: Annotated[float, Field(ge=0)]
    cache_read: Annotated[float, Field(ge=0)] | None = None
    cache_write: Annotated[float, Field(ge=0)] | None = None


class ModelTimeouts(_Strict):
    """How long a call to this model may wait, each defaulting to a setting (docs/projects.md):
    connecting (MODEL_CONNECT_TIMEOUT_S), for the first byte of its answer
    (MODEL_FIRST_BYTE_TIMEOUT_S) and between two chunks of it (MODEL_IDLE_TIMEOUT_S)."""

    connect_s: Annotated[float, Field(gt=0, le=60)] | None = None
    first_byte_s: Annotated[float, Field(gt=0, le=900)] | None = None
    idle_s: Annotated[float, Field(gt=0, le=900)] | None = None


class _ModelBase(_Strict):
    fallbacks: list[str] = Field(default_factory=list)
    timeouts: ModelTimeouts = Field(default_factory=ModelTimeouts)
    max_ttft_ms: Annotated[int, Field(ge=1)] | None = None
    # Upstream retries before the first token (connection errors, timeouts, 429, 5xx).
    max_retries: Annotated[int, Field(ge=0, le=10)] = 2
    prices: Prices | None = None  # absent: no cost is computed (the record says so)


class EchoModel(_ModelBase):
    """Built-in deterministic model: answers with the last user message. No network."""

    provider: Literal["echo"]
    ttft_ms: Annotated[float, Field(ge=0)] = 0.0
    tokens_per_second: Annotated[float, Field(gt=0)] | None = None
    prefix: str = ""
    # Deterministic tool calling (see providers/echo.py): off, or call each offered tool once.
    tool_mode: Literal["off", "call_all"] = "off"


class OpenAIModel(_ModelBase):
    """Any OpenAI-compatible server: vLLM, TGI, Ollama, OpenAI itself."""

    provider: Literal["openai"]
    base_url: str
    model: str
    api_key_param: str | None = None  # name of an SSM SecureString holding the key
    headers: dict[str, str] = Field(default_factory=dict)
    supports_n: bool = True
    timeout_s: Annotated[float, Field(gt=0)] | None = None

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")


Effort = Literal["none", "minimal", "low", "medium", "high"]


def _default_budgets() -> dict[Effort, int]:
    return {"none": 0, "minimal": 1024, "low": 2048, "medium": 8192, "high": 24576}


class BedrockThinking(_Strict):
    """Extended thinking (Anthropic models on Bedrock): `additionalModelRequestFields.thinking`.

    Setting this block says the model supports it: `reasoning_effort` picks a budget from
    `effort_budgets` (`none` turns it off). `budget_tokens` turns thinking on for requests that
    name no effort. Anthropic's minimum budget is 1024 tokens (docs/providers.md).
    """

    budget_tokens: Annotated[int, Field(ge=1024)] | None = None
    effort_budgets: dict[Effort, Annotated[int, Field(ge=0)]] = Field(default_factory=_default_budgets)

    @field_validator("effort_budgets")
    @classmethod
    def _budgets(cls, v: dict[str, int]) -> dict[str, int]:
        for effort, budget in v.items():
            if budget and budget < 1024:
                raise ValueError(f"{effort}: a thinking budget is 0 (off) or at least 1024 tokens")
        return v


class BedrockModel(_ModelBase):
    """Amazon Bedrock through the Converse API. `model_id` may be a foundation model id, a cross-region
    inference profile id (`us.`, `eu.`, `apac.`, `global.` ...) or an application inference profile ARN."""

    provider: Literal["bedrock"]
    model_id: str
    region: str | None = None  # default: the ARN's region for a profile ARN, else the function's
    additional_model_request_fields: dict[str, Any] = Field(default_factory=dict)
    thinking: BedrockThinking | None = None
    # Prompt caching: a `cachePoint` after the system prompt, the tools, and/or the conversation so far.
    cache_points: list[Literal["system", "tools", "messages"]] = Field(default_factory=list)
    # Newer Anthropic models refuse `temperature` and `top_p` together: keep `temperature`, drop `top_p`.
    exclusive_sampling: bool = False
    # The model's own output limit: a request asking for more is a 400 naming `max_tokens`.
    max_output_tokens: Annotated[int, Field(ge=1)] | None = None


ModelConfig = Annotated[EchoModel | OpenAIModel | BedrockModel, Field(discriminator="provider")]


class SystemPrompt(_Strict):
    template: str

    @field_validator("template")
    @classmethod
    def _sandboxed(cls, v: str) -> str:
        # Refused at `config validate/push` time what the sandbox would refuse at render time.
        from handler.config.templates import check_template

        check_template(v)
        return v


class HttpTarget(_Strict):
    type: Literal["http"]
    url: str
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 10.0
    auth_header: str = "Authorization"
    auth_param: str | None = None  # SSM SecureString with the header's value

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v


class LambdaTarget(_Strict):
    type: Literal["lambda"]
    function: str
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 10.0


class ToolConfig(_Strict):
    description: str
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    enabled: bool = True
    target: Annotated[HttpTarget | LambdaTarget, Field(discriminator="type")]


class StopConfig(_Strict):
    """When a campaign is decided (experiments/statistics.py `evaluate_stop`): every variant has
    `min_samples` values of `metric` (a feedback metric, or `outcome:<metric>` for a session
    outcome) and the best is significantly better than every other at `confidence`."""

    metric: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,71}$")]
    min_samples: Annotated[int, Field(ge=2)]
    confidence: Annotated[float, Field(gt=0, lt=1)] = 0.95
    higher_is_better: bool = True


class CampaignConfig(_Strict):
    id: uuid.UUID
    # completed: decided by its stop rule (the gateway records that in DynamoDB and overlays it).
    status: Literal["active", "paused", "ended", "completed"] = "active"
    variants: dict[str, Annotated[float, Field(ge=0)]]
    control: str | None = None  # the variant others are compared with; default: the first
    stop: StopConfig | None = None
    # After it completes, `model: "{project}"` goes to the winner, or to the project's default.
    then: Literal["winner", "default"] = "winner"
    winner: str | None = None

    @model_validator(mode="after")
    def _variants_named(self) -> CampaignConfig:
        for field in ("control", "winner"):
            name = getattr(self, field)
            if name is not None and name not in self.variants:
                raise ValueError(f"{field}: {name!r} is not one of variants")
        if self.winner is not None and self.status != "completed":
            raise ValueError("winner: only a completed campaign has one")
        return self

    @property
    def control_variant(self) -> str:
        return self.control or next(iter(self.variants))

    @field_validator("variants")
    @classmethod
    def _some_weight(cls, v: dict[str, float]) -> dict[str, float]:
        if not v or sum(v.values()) <= 0:
            raise ValueError("needs at least one variant with a positive weight")
        return v


class ProjectConfig(_Strict):
    project: str = Field(pattern=NAME_RE)
    default_model: str
    store: bool = True
    limits: Limits = Field(default_factory=Limits)
    system_prompt: SystemPrompt | None = None
    models: dict[str, ModelConfig]
    tools: dict[str, ToolConfig] = Field(default_factory=dict)
    campaigns: dict[str, CampaignConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _references_resolve(self) -> ProjectConfig:
        for kind, names in (("models", self.models), ("tools", self.tools), ("campaigns", self.campaigns)):
            for name in names:
                if not _NAME.match(name):
                    raise ValueError(f"{kind}.{name}: name must match {NAME_RE}")
        if self.default_model not in self.models:
            raise ValueError(f"default_model: {self.default_model!r} is not one of models")
        for name, model in self.models.items():
            for fb in model.fallbacks:
                if fb not in self.models:
                    raise ValueError(f"models.{name}.fallbacks: {fb!r} is not one of models")
        for tool_id in self.tools:
            # The id is the function name the model sees: OpenAI and Bedrock both allow only these.
            if not _TOOL_NAME.match(tool_id):
                raise ValueError(f"tools.{tool_id}: must match {TOOL_NAME_RE} (the id is the function name)")
        for key, campaign in self.campaigns.items():
            for variant in campaign.variants:
                if variant not in self.models:
                    raise ValueError(f"campaigns.{key}.variants: {variant!r} is not one of models")
        ids = [str(c.id) for c in self.campaigns.values()]
        if len(set(ids)) != len(ids):
            raise ValueError("campaigns: two campaigns have the same id")
        active = [key for key, c in self.campaigns.items() if c.status == "active"]
        if len(active) > 1:
            raise ValueError(
                f"campaigns: {', '.join(active)} are all active; at most one campaign may be active "
                '(it routes `model: "{project}"`)'
            )
        return self

    def decided_campaign(self) -> tuple[str, CampaignConfig] | None:
        """The first completed campaign that hands `model: "{project}"` to its winner."""
        for key, campaign in self.campaigns.items():
            if campaign.status == "completed" and campaign.then == "winner" and campaign.winner:
                return key, campaign
        return None

    def active_campaign(self) -> tuple[str, CampaignConfig] | None:
        """The project's active campaign, which `model: "{project}"` is routed through."""
        for key, campaign in self.campaigns.items():
            if campaign.status == "active":
                return key, campaign
        return None
