"""`make load`: many requests at once against the local server, on loopback only.

Starts `python -m gatewayctl dev` (what `make dev` runs: AWS emulated in-process, the demo project,
uvicorn with the keep-alive of src/run.sh) on a free port, then sends, with one bounded httpx pool:

- REQUESTS non-streamed completions at CONCURRENCY (default 5,000 at 50),
- STREAMS streamed completions at STREAM_CONCURRENCY (default 500 at 100),

and finally checks that every answered completion is in the table. It reports errors by kind
(status codes, connection resets, timeouts), latency percentiles, and the completion ids missing
from the table; it exits 1 on any error or missing record (issue #11, Done-when).

    .venv/bin/python -m benchmarks.load [--requests 5000] [--concurrency 50] [--streams 500]
                                        [--stream-concurrency 100]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Any

import httpx

from benchmarks.common import PYTHON, ROOT, free_port, percentile, stop, wait_port

KEY = "sk-local-dev"
CHAT = "/api/v1/chat/completions"


async def _one(
    client: httpx.AsyncClient, i: int, stream: bool, errors: collections.Counter[str], ids: list[str]
) -> float:
    body = {"model": "demo", "messages": [{"role": "user", "content": f"load {i} hello world"}]}
    began = time.perf_counter()
    try:
        if stream:
            body["stream"] = True
            async with client.stream("POST", CHAT, json=body) as r:
                text = (await r.aread()).decode()
                if r.status_code != 200 or "[DONE]" not in text:
                    errors[f"stream HTTP {r.status_code}: {text[:200]}"] += 1
                    return -1.0
                for line in text.splitlines():
                    if line.startswith("data: {"):
                        chunk = json.loads(line[6:])
                        for choice in chunk.get("choices") or []:
                            if choice.get("completion_id"):
                                ids.append(choice["completion_id"])
                                break
                        else:
                            continue
                        break
        else:
            r = await client.post(CHAT, json=body)
            if r.status_code != 200:
                errors[f"HTTP {r.status_code}: {r.text[:200]}"] += 1
                return -1.0
            ids.extend(c["completion_id"] for c in r.json()["choices"])
    except httpx.HTTPError as exc:
        errors[type(exc).__name__] += 1
        return -1.0
    return (time.perf_counter() - began) * 1000


async def _phase(base_url: str, total: int, concurrency: int, stream: bool) -> dict[str, Any]:
    errors: collections.Counter[str] = collections.Counter()
    ids: list[str] = []
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {KEY}"}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, limits=limits, timeout=httpx.Timeout(60.0)
    ) as client:

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                ms = await _one(client, i, stream, errors, ids)
                if ms >= 0:
                    latencies.append(ms)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return {
        "kind": "streams" if stream else "requests",
        "sent": total,
        "concurrency": concurrency,
        "ok": len(latencies),
        "errors": dict(errors),
        "seconds": round(elapsed, 2),
        "per_second": round(total / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 99), 1) if latencies else None,
        "ids": ids,
    }


def _stored_ids(endpoint: str) -> set[str]:
    import boto3

    from gatewayctl.local.bootstrap import LOCAL_ENV

    ddb = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=LOCAL_ENV["AWS_REGION"],
        aws_access_key_id=LOCAL_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_ENV["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=LOCAL_ENV["AWS_SESSION_TOKEN"],
    )
    found: set[str] = set()
    for page in ddb.get_paginator("scan").paginate(TableName=LOCAL_ENV["TABLE_NAME"]):
        for item in page["Items"]:
            if item.get("sk", {}).get("S") == "COMPLETION":
                found.add(json.loads(item["body"]["S"])["completion_id"])
    return found


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--stream-concurrency", type=int, default=100)
    args = parser.parse_args()

    port = free_port()
    env = {**os.environ, "PORT": str(port), "PYTHONPATH": f"{ROOT / 'src'}:{ROOT / 'tools'}"}
    env.pop("AWS_ENDPOINT_URL", None)
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed below: the server writes to it meanwhile)
    server = subprocess.Popen([PYTHON, "-m", "gatewayctl", "dev"], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        wait_port(port, server, timeout=120)
        log.seek(0)
        found = re.search(rb"AWS emulation \(moto\) at (http://127\.0\.0\.1:\d+)", log.read())
        assert found, "the dev server did not say where its emulation is"
        endpoint = found.group(1).decode()
        base_url = f"http://127.0.0.1:{port}"
        results = [
            asyncio.run(_phase(base_url, args.requests, args.concurrency, stream=False)),
            asyncio.run(_phase(base_url, args.streams, args.stream_concurrency, stream=True)),
        ]
        stored = _stored_ids(endpoint)
    finally:
        stop(server)
        log.close()
    failed = False
    for result in results:
        ids = result.pop("ids")
        missing = [i for i in ids if i not in stored]
        result["answered_completions"] = len(ids)
        result["missing_from_table"] = len(missing)
        failed |= bool(result["errors"]) or bool(missing) or result["ok"] != result["sent"]
        print(json.dumps(result))
    print("FAILED" if failed else "OK: 0 errors, every answered completion is in the table")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
