"""One cold start, run as a script in a new process: `python benchmarks/cold_start.py EVENT OUT TARGET`.

Imports the Lambda handler (TARGET `gateway`, or `bare` for the FastAPI + Mangum floor), answers one
API event, and writes its monotonic timestamps to OUT. The parent took its own timestamp just before
starting this process; CLOCK_MONOTONIC is system-wide, so the two compare. Deliberately nothing else
is imported before the handler, as under the Lambda runtime.
"""

import time

started = time.monotonic()

import json  # noqa: E402
import sys  # noqa: E402


class LambdaContext:
    # Its own copy: the measured process imports nothing of ours before the handler import.
    function_name = "chat-gateway-ApiFunction"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:chat-gateway-ApiFunction"
    memory_limit_in_mb = 1024
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/chat-gateway-ApiFunction"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def compiled_at_start() -> int:
    """Modules loaded from a .py that has no bytecode beside it: compiled by this start (where
    bytecode writing is off, as on Lambda, by every start)."""
    import os

    count = 0
    for mod in list(sys.modules.values()):
        spec = getattr(mod, "__spec__", None)
        origin, cached = getattr(spec, "origin", None), getattr(spec, "cached", None)
        if origin and origin.endswith(".py") and cached and not os.path.exists(cached):
            count += 1
    return count


def main() -> None:
    event_path, out_path, target = sys.argv[1:4]
    with open(event_path) as f:
        event = json.load(f)
    importing = time.monotonic()
    if target == "bare":
        from benchmarks.bare_app import lambda_handler
    else:
        from handler.entrypoints.http import lambda_handler
    imported = time.monotonic()
    cpu_imported = time.process_time()
    if "BENCH_MARK_IMPORTED" in __import__("os").environ:  # benchmarks/importtime.py: phases
        sys.stderr.write("import time: -- handler imported --\n")
    response = lambda_handler(event, LambdaContext())
    answered = time.monotonic()
    cpu = time.process_time()  # CPU time of this process since it began: steadier than wall time
    module = sys.modules[lambda_handler.__module__]
    result = {
        "started": started,
        "importing": importing,
        "imported": imported,
        "answered": answered,
        "cpu": cpu,
        "cpu_imported": cpu_imported,
        "status": response.get("statusCode"),
        "body": str(response.get("body"))[:300],
        "modules": len(sys.modules),
        "handler_file": getattr(module, "__file__", None),
        "compiled_at_start": compiled_at_start(),
    }
    with open(out_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
