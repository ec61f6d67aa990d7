#!/bin/bash
# Entry point of ChatFunction under the AWS Lambda Web Adapter (template.yaml: Handler: run.sh,
# AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap). The adapter runs this script, waits until
# GET $AWS_LWA_READINESS_CHECK_PATH answers on $PORT, then relays each invocation to the app as HTTP,
# streaming the response back (AWS_LWA_INVOKE_MODE=response_stream).
#
# `exec` replaces the shell with uvicorn, so the SIGTERM Lambda sends at shutdown reaches uvicorn
# directly and it shuts down gracefully.
#
# --timeout-keep-alive 120: uvicorn's default (5 s) closes idle connections that the Web Adapter's
# pool (and common clients: 60-90 s) still reuse; a request sent just as uvicorn closes one dies as a
# connection reset (0.02-0.42 % of requests under load, issue #11). Keep it in step with
# handler.settings.UVICORN_KEEP_ALIVE_S.
set -euo pipefail

# Our code is the function's code root ($LAMBDA_TASK_ROOT, or this script's directory when run
# locally); third-party packages come from the layer (/opt/python), ahead of the runtime's own
# (boto3 in $LAMBDA_RUNTIME_DIR), the same order the managed runtime uses.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PYTHONPATH="${LAMBDA_TASK_ROOT:-$here}:/opt/python${LAMBDA_RUNTIME_DIR:+:$LAMBDA_RUNTIME_DIR}${PYTHONPATH:+:$PYTHONPATH}"

exec python -m uvicorn handler.entrypoints.asgi:app \
    --host 0.0.0.0 \
    --port "${PORT:-8080}" \
    --timeout-keep-alive 120 \
    --no-access-log
