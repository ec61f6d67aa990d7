"""The Lambda context the local commands, the tests and the benchmarks hand to a handler."""

from __future__ import annotations

import time
import uuid


class LambdaContext:
    """The attributes Powertools and Mangum read from a real context, with a real countdown."""

    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    log_stream_name = "local"

    def __init__(self, function_name: str = "chat-gateway-local", timeout_ms: int = 900_000) -> None:
        self.function_name = function_name
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - time.monotonic()) * 1000), 0)
