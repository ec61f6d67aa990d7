"""The floor the gateway is compared with: a bare FastAPI + Mangum + Powertools function.

Same imports a minimal Lambda web function pays for (FastAPI, Mangum, Powertools Logger, and boto3,
which such a function imports to talk to AWS), one trivial route on the same path, answering a small
JSON document. Nothing else: no validation model, no config, no provider.
"""

from __future__ import annotations

from typing import Any

import boto3  # noqa: F401  (a real function imports it; the floor should pay for it too)
from aws_lambda_powertools import Logger
from fastapi import FastAPI
from mangum import Mangum

logger = Logger(service="bare")
app = FastAPI()


@app.post("/api/v1/chat/completions")
async def chat(body: dict[str, Any]) -> dict[str, Any]:
    return {"id": "bare", "object": "chat.completion", "model": body.get("model"), "choices": []}


_mangum = Mangum(app, lifespan="off")


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response: dict[str, Any] = _mangum(event, context)
    return response
