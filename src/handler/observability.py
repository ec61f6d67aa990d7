"""Logging, tracing and metrics: one place, Powertools underneath.

Structured logs with keys, never message content unless `LOG_CONTENT=true`, never secrets. Metrics
are EMF (CloudWatch parses them from the log stream, no API call on the hot path), one document per
completion, flushed at once: the same code is right under Mangum and under the streaming adapter. The tracer is
created on first use: X-Ray's SDK costs import time that the first request should not pay for
when tracing is off.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger

logger = Logger(service="chat-gateway", use_rfc3339=True)


@cache
def metrics() -> Any:
    from aws_lambda_powertools import Metrics

    return Metrics(namespace="ChatGateway", service="chat-gateway")


@cache
def tracer() -> Any:
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
) -> None:
    """One completion's figures as one EMF document: counts, latency, TTFT and tokens by project
    and model (and status, so errors and missed deadlines are graphable)."""
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

    m = EphemeralMetrics(namespace="ChatGateway", service="chat-gateway")
    m.add_dimension(name="project", value=project)
    m.add_dimension(name="model", value=model)
    m.add_dimension(name="status", value=status)
    m.add_metric(name="Completions", unit=MetricUnit.Count, value=1)
    m.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=round(duration_ms, 3))
    if ttft_ms is not None:
        m.add_metric(name="TimeToFirstToken", unit=MetricUnit.Milliseconds, value=round(ttft_ms, 3))
    m.add_metric(name="PromptTokens", unit=MetricUnit.Count, value=prompt_tokens)
    m.add_metric(name="CompletionTokens", unit=MetricUnit.Count, value=completion_tokens)
    m.flush_metrics()
