"""AWS emulated by a moto server in a process of its own, with the stack's resources and bench projects.

Its start-up is never counted: it is up, bootstrapped and warmed before any measured process runs.
"""

from __future__ import annotations

import subprocess
from typing import Any

from benchmarks.common import PYTHON, ROOT, free_port, stop, wait_port

CONFIG_DIR = ROOT / "config"
PREFIX = "/chat-gateway"

NO_STORE = "bench"  # echo, zero latency, store off
STORE = "bench-store"  # the same, store on
QUOTA = "bench-quota"  # NO_STORE with all four project quotas (never reached): the quota check's cost
TEMPLATED = "bench-template"  # store off, with a system prompt template (jinja2 on the first request)
RELAY = "bench-relay"  # openai models pointing at benchmarks.upstream
TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def _echo_project(name: str, *, store: bool, template: str | None = None) -> dict[str, Any]:
    project: dict[str, Any] = {
        "project": name,
        "default_model": "echo",
        "store": store,
        "models": {"echo": {"provider": "echo"}},
    }
    if template is not None:
        project["system_prompt"] = {"template": template}
    return project


class Emulation:
    """`with Emulation() as aws:` a moto server on a free port; `aws.env` is the function's env."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.endpoint = ""
        self.env: dict[str, str] = {}
        self._session: Any = None

    def __enter__(self) -> Emulation:
        port = free_port()
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_port(port, self.proc, timeout=60)
            self.endpoint = f"http://127.0.0.1:{port}"
            self._bootstrap()
        except BaseException:
            stop(self.proc)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        stop(self.proc)

    def _bootstrap(self) -> None:
        import boto3

        from gatewayctl.local.bootstrap import create_resources, load_configs, local_environment

        env = local_environment(self.endpoint)
        self._session = boto3.session.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=env["AWS_SESSION_TOKEN"],
            region_name=env["AWS_REGION"],
        )
        # boto3 reads AWS_ENDPOINT_URL from the environment; pass it explicitly instead.
        session = _EndpointSession(self._session, self.endpoint)
        env.update(create_resources(session, env))
        load_configs(session, CONFIG_DIR, env["CONFIG_PREFIX"])
        for project in (
            _echo_project(NO_STORE, store=False),
            _echo_project(STORE, store=True),
            {
                **_echo_project(QUOTA, store=False),
                "limits": {
                    "requests_per_minute": 10**9,
                    "tokens_per_minute": 10**12,
                    "tokens_per_day": 10**12,
                    "usd_per_month": 10**9,
                },
            },
            _echo_project(
                TEMPLATED, store=False, template="You are {{ persona | default('an assistant') }}."
            ),
        ):
            self.put_project(project)
        env.update(
            {
                "AUTH_MODE": "dev",
                "DEV_API_KEY": "sk-local-dev",
                # What the Lambda runtime sets. Libraries read these: the X-Ray SDK, for one, takes
                # its Lambda path only when LAMBDA_TASK_ROOT is set (elsewhere it builds two botocore
                # X-Ray clients at import, ~100 ms that a deployed function never pays).
                "LAMBDA_TASK_ROOT": str(ROOT / "src"),
                "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
                "AWS_LAMBDA_FUNCTION_NAME": "chat-gateway-ApiFunction",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/chat-gateway-ApiFunction",
                "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
                # Tracing on, as deployed (`Tracing: Active`): segments go to a daemon address where
                # nothing listens (UDP, so sending costs what it costs on Lambda). The trace header
                # is the one the runtime passes for a sampled invocation.
                "POWERTOOLS_TRACE_DISABLED": "false",
                "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
                "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
                "_X_AMZN_TRACE_ID": TRACE_HEADER,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
                "LOG_CONTENT": "false",
            }
        )
        self.env = env

    def put_project(self, project: dict[str, Any]) -> None:
        from gatewayctl.config_files import push
        from handler.config.models import ProjectConfig

        ssm = self._session.client("ssm", endpoint_url=self.endpoint)
        push(ProjectConfig.model_validate(project), PREFIX, ssm)

    def put_relay_project(self, upstream_url: str, long_chunks: int) -> None:
        """Models `short` (8 chunks) and `long` (`long_chunks` chunks) on the fast fake upstream."""

        def model(upstream: str) -> dict[str, Any]:
            return {"provider": "openai", "base_url": upstream_url, "model": upstream, "max_retries": 0}

        self.put_project(
            {
                "project": RELAY,
                "default_model": "short",
                "store": False,
                "models": {"short": model("bench-8"), "long": model(f"bench-{long_chunks}")},
            }
        )


class _EndpointSession:
    """A boto3 session whose clients all talk to the emulation."""

    def __init__(self, session: Any, endpoint: str) -> None:
        self._session = session
        self._endpoint = endpoint

    def client(self, service: str) -> Any:
        return self._session.client(service, endpoint_url=self._endpoint)
