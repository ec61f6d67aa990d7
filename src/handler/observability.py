"""Logging, tracing and metrics: one place, Powertools underneath.

Structured logs with keys, never message content unless `LOG_CONTENT=true`, never secrets. Metrics
are EMF (CloudWatch parses them from the log stream, no API call on the hot path). The tracer is
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

    return Tracer(service="chat-gateway")


def record_completion(
    project: str,
    model: str,
    status: str,
    ttft_ms: float | None,
    duration_ms: float,
    prompt_tokens: int,
    completion_tokens: int,
) -> None:
    """One completion's figures, as EMF metrics with project and model dimensions."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    with single_metric(name="Completions", unit=MetricUnit.Count, value=1, namespace="ChatGateway") as m:
        m.add_dimension(name="project", value=project)
        m.add_dimension(name="model", value=model)
        m.add_dimension(name="status", value=status)
        m.add_metadata(key="duration_ms", value=duration_ms)
        if ttft_ms is not None:
            m.add_metadata(key="ttft_ms", value=ttft_ms)
        m.add_metadata(key="prompt_tokens", value=prompt_tokens)
        m.add_metadata(key="completion_tokens", value=completion_tokens)
