"""AWS clients, created on first use and reused across invocations.

Nothing here runs at import time. Endpoints come from botocore's own `AWS_ENDPOINT_URL` /
`AWS_ENDPOINT_URL_<SERVICE>` variables, which is how the local emulation and the tests point
clients at moto or at a fake Bedrock. Clients come from one botocore session, not boto3: boto3 adds
nothing a low-level client needs, and importing it (with s3transfer) costs cold start time.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from handler.settings import Settings

_lock = threading.Lock()


@cache
def _session() -> Any:
    import botocore.session

    return botocore.session.get_session()


@cache
def client(service: str, region: str | None = None) -> Any:
    """A botocore client for `service`, shared by every request of this process."""
    with _lock:
        from handler.settings import get_settings

        config = client_config(service, get_settings())
        return _session().create_client(
            service,
            region_name=region or get_settings().aws_region,
            config=config,
        )


def client_config(service: str, settings: Settings) -> Any:
    """Timeouts and a retry budget for `service`: no AWS call waits unbounded (issue #11, C9).

    Bedrock calls are retried by the completion service (with its TTFT deadline and fallbacks);
    botocore's own backoff would hide throttling from it for seconds, and its reads are bounded by the
    model's own timeouts. A Lambda tool invoke is not idempotent: a retry after a read timeout would
    run the tool twice; the tool runner bounds it with the tool's own timeout (at most 60 s).
    Everything else (DynamoDB, SQS, SSM, S3) gets the store's budget from the settings.
    """
    from botocore.config import Config

    read_timeout: float
    if service == "bedrock-runtime":
        attempts, read_timeout = 1, settings.upstream_read_timeout_s
    elif service == "lambda":
        attempts, read_timeout = 1, 65
    else:
        attempts = settings.aws_max_attempts
        read_timeout = settings.aws_s3_read_timeout_s if service == "s3" else settings.aws_read_timeout_s
    return Config(
        retries={"total_max_attempts": attempts, "mode": "standard"},
        connect_timeout=settings.aws_connect_timeout_s,
        read_timeout=read_timeout,
        max_pool_connections=50,
    )


class LazyClient:
    """`client = LazyClient("s3")` on an adapter class: the client injected as `self._client`
    (tests pass one), else this process's shared client, created on first use."""

    def __init__(self, service: str) -> None:
        self.service = service

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        if getattr(obj, "_client", None) is None:
            obj._client = client(self.service)
        return obj._client


@cache
def boto3_session() -> Any:
    """A boto3 Session over the shared botocore session (for local tooling and tests): service
    models are parsed once per process, not once per session."""
    import boto3

    return boto3.session.Session(botocore_session=_session())


def forget_credentials() -> None:
    """Drop the credentials the shared session resolved, keeping its parsed service models (a SnapStart
    restore: credentials resolved before the snapshot are short-lived and shared by every restored
    environment). The next client resolves them again from the environment."""
    if _session.cache_info().currsize:
        _session()._credentials = None  # botocore has no public way to forget them


def reset_clients() -> None:
    """Forget every client (tests switch endpoints between cases). The session stays: it holds
    only the parsed service models, and endpoints are read from the environment per client."""
    client.cache_clear()
