"""Logging, tracing and metrics: one place, Powertools underneath.

Structured logs with keys, never message content unless `LOG_CONTENT=true`, never secrets. Metrics
are EMF (CloudWatch parses them from the log stream, no API call on the hot path), one document per
completion, flushed at once: the same code is right under Mangum and under the streaming adapter. The tracer is
created on first use: X-Ray's SDK costs import time that the first request should not pay for
when tracing is off.
"""

from __future__ import annotations

import sys
import time
from functools import cache
from typing import TYPE_CHECKING, Any

import orjson
from aws_lambda_powertools import Logger

from handler.settings import get_settings

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer


def _log_json(record: dict[str, Any]) -> str:
    """Powertools' formatter with orjson instead of `json.dumps`: about a third of a log line's
    cost on the hot path (every completion logs one), the same keys in the same order."""
    return orjson.dumps(record, default=str).decode()


logger = Logger(service="chat-gateway", use_rfc3339=True, json_serializer=_log_json)

_NAMESPACE = "ChatGateway"
_SERVICE = "chat-gateway"


@cache
def metrics() -> Any:
    from aws_lambda_powertools import Metrics

    return Metrics(namespace="ChatGateway", service="chat-gateway")


@cache
def tracer() -> Tracer:
    from aws_lambda_powertools import Tracer

    # Only botocore is patched: patching every supported library costs cold-start time for
    # subsegments nobody reads; upstream model calls are timed in the stored record instead.
    return Tracer(service="chat-gateway", patch_modules=["botocore"])


def record_completion(
    project: str,
    model: str,
    status: str,
    ttft_ms: float | None,
    duration_ms: float,
    prompt_tokens: int,
    completion_tokens: int,
    cost_usd: float | None = None,
) -> None:
    """One completion's figures as one EMF document: counts, latency, TTFT, tokens and cost
    (`CostUSD`, priced models only) by project and model (and status, so errors and missed
    deadlines are graphable), and once more by service
    alone: a percentile can't be summed over dimensions, and an alarm can't search, so the stack's
    TTFT alarm reads that series (`template.yaml`; tests/infra/test_operations.py checks the names).

    The document Powertools' `EphemeralMetrics` would print (same directive, `service` dimension,
    values as one-element lists), written directly: Powertools takes ~95 us per completion to build
    it (unit enums, validation, json), this ~5 us, on every request's path.
    """
    if _metrics_disabled():
        return
    metrics: list[tuple[str, str, float]] = [
        ("Completions", "Count", 1.0),
        ("Latency", "Milliseconds", round(duration_ms, 3)),
    ]
    if ttft_ms is not None:
        metrics.append(("TimeToFirstToken", "Milliseconds", round(ttft_ms, 3)))
    metrics.append(("PromptTokens", "Count", float(prompt_tokens)))
    metrics.append(("CompletionTokens", "Count", float(completion_tokens)))
    if cost_usd is not None:  # only for priced models: an unpriced one is not free
        metrics.append(("CostUSD", "None", cost_usd))
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": _NAMESPACE,
                    "Dimensions": [["project", "model", "status", "service"], ["service"]],
                    "Metrics": [{"Name": name, "Unit": unit} for name, unit, _ in metrics],
                }
            ],
        },
        "project": project,
        "model": model,
        "status": status,
        "service": _SERVICE,
    }
    for name, _, value in metrics:
        document[name] = [value]
    sys.stdout.write(orjson.dumps(document).decode() + "\n")


def _metrics_disabled() -> bool:
    """Powertools' rule: POWERTOOLS_METRICS_DISABLED, else off in POWERTOOLS_DEV mode (read once,
    with the other settings)."""
    return get_settings().metrics_disabled
