"""`make dev`: the gateway on 127.0.0.1 with AWS emulated in-process, the echo model and the demo
project. No credentials, no Docker, no network.

    PORT=8000 AWS_PORT=5000 CONFIG_DIR=config python -m gatewayctl dev
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

CURL = """curl -s http://127.0.0.1:{port}/api/v1/chat/completions \\
  -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\
  -d '{{"model": "demo", "messages": [{{"role": "user", "content": "Hello, gateway!"}}],
       "labels": {{"team": "docs"}}, "system_prompt_args": {{"persona": "a concise assistant"}}}}'"""


_EXPORTED = (
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)


def projects_in(config_dir: Path) -> list[str]:
    """The projects of `CONFIG_DIR`, or SystemExit with one line naming the problem (a missing or
    empty directory used to start a server with no project, whose printed curl answered 404)."""
    from gatewayctl.config_files import ConfigFileError, load_dir

    if not config_dir.is_dir():
        raise SystemExit(f"error: CONFIG_DIR={config_dir}: no such directory")
    try:
        configs = load_dir(config_dir)
    except ConfigFileError as exc:
        raise SystemExit(f"error: {' '.join(str(exc).split())}") from None
    if not configs:
        raise SystemExit(f"error: CONFIG_DIR={config_dir}: no project file (*.yaml, *.yml, *.json)")
    return [c.project for c in configs]


def exports(env: dict[str, str]) -> str:
    """The environment to export for running the CLI (`python -m gatewayctl keys ...`) against it."""
    names = (*_EXPORTED, "TABLE_NAME", "CONFIG_PREFIX")
    return "\n".join(f"export {name}={env[name]}" for name in names if name in env)


def main() -> None:
    port = int(os.environ.get("PORT", "8000"))
    aws_port = int(os.environ.get("AWS_PORT", "0"))  # 0: any free port
    config_dir = Path(os.environ.get("CONFIG_DIR", "config"))
    projects = projects_in(config_dir)
    import logging

    from gatewayctl.local.bootstrap import bootstrap, start_emulation
    from handler.settings import get_settings

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every AWS call

    _, endpoint = start_emulation(aws_port)
    os.environ.setdefault("AUTH_MODE", "dev")
    os.environ.setdefault("LOCAL_PROJECT_KEYS", ",".join(projects))  # sk-local-<project>, scoped
    env = bootstrap(endpoint, config_dir)
    key = get_settings().dev_api_key  # bootstrap() applied the environment and reset the settings
    print(
        f"AWS emulation (moto) at {endpoint}; table {env['TABLE_NAME']}; config from {config_dir}/",
        file=sys.stderr,
    )
    print(f"Projects loaded: {', '.join(projects)}", file=sys.stderr)
    shown = {**env, **{k: os.environ[k] for k in _EXPORTED if k in os.environ}}
    print(f"To run the CLI against this emulation:\n\n{exports(shown)}\n", file=sys.stderr)
    print(f"Dev auth: requests must send 'Authorization: Bearer {key}' (DEV_API_KEY)", file=sys.stderr)
    scoped = ", ".join(f"sk-local-{p}" for p in projects)
    print(
        f"Keys scoped to one project each (try another project's data with them): {scoped}", file=sys.stderr
    )
    print(
        f"Gateway on http://127.0.0.1:{port}  -- try:\n\n{CURL.format(port=port, key=key)}\n", file=sys.stderr
    )

    import uvicorn

    uvicorn.run("handler.entrypoints.asgi:app", **uvicorn_options(port))


def uvicorn_options(port: int) -> dict[str, Any]:
    """How the dev server runs uvicorn: the keep-alive of `src/run.sh` (handler.settings)."""
    from handler.settings import UVICORN_KEEP_ALIVE_S

    return {
        "host": "127.0.0.1",
        "port": port,
        "log_level": "warning",
        "timeout_keep_alive": UVICORN_KEEP_ALIVE_S,
    }


if __name__ == "__main__":
    main()
