"""`python -m gatewayctl env`: the env file of `sam local invoke --env-vars`, and events/env.json.

`sam local invoke` hands a function only the variables its template declares, valued from the env
file where it names them (SAM CLI, samcli/local/lambdafn/env_vars.py, `EnvironmentVariables.resolve`:
it walks the template's variables; a name only in the file is dropped, a name only in the template
keeps the template's value, which is an unresolved intrinsic -> ""). So the file must hold exactly
the template's variables, function by function.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from gatewayctl import envfile
from gatewayctl.cli import main
from gatewayctl.local.bootstrap import DEFAULT_AWS_PORT, LOCAL_ENV
from gatewayctl.stack import describe
from tests.conftest import EVENTS_DIR, ROOT, TEST_CONFIG_DIR
from tests.infra.emulated_stack import create_stack
from tests.infra.sam import load_template

ENV_FILE = EVENTS_DIR / "env.json"
STACK, REGION = "cg-envtest", "eu-west-1"
STACK_PARAMETERS = {"ConfigPrefix": "/cg-envtest", "LogLevel": "DEBUG", "MaxReceiveCount": "7"}


def template_variables(template: dict[str, Any]) -> dict[str, set[str]]:
    """What the template sets for each function: Globals, then the function's own (cfn-lint's
    reading of template.yaml, not gatewayctl's)."""
    shared = template["Globals"]["Function"]["Environment"]["Variables"]
    return {
        logical_id: set(shared) | set(resource["Properties"].get("Environment", {}).get("Variables", {}))
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def differences(template: dict[str, Any], env: dict[str, dict[str, str]]) -> list[str]:
    wanted = template_variables(template)
    found = []
    for function in sorted(set(wanted) | set(env)):
        if function not in env:
            found.append(f"{function}: missing from the file")
        elif function not in wanted:
            found.append(f"{function}: not a function of the template")
        else:
            found += [f"{function}: {n} missing" for n in sorted(wanted[function] - set(env[function]))]
            found += [
                f"{function}: {n} not in the template" for n in sorted(set(env[function]) - wanted[function])
            ]
    return found


@pytest.mark.unit
def test_env_file_holds_every_variable_the_template_sets_and_nothing_else() -> None:
    env = json.loads(ENV_FILE.read_text())
    assert differences(load_template(), env) == []
    assert all(isinstance(v, str) for variables in env.values() for v in variables.values())


@pytest.mark.unit
def test_a_variable_added_to_the_template_and_not_to_the_file_is_found() -> None:
    env = json.loads(ENV_FILE.read_text())
    template = load_template()
    template["Globals"]["Function"]["Environment"]["Variables"]["NEW_SETTING"] = "1"
    template["Resources"]["BatchFunction"]["Properties"]["Environment"]["Variables"]["BATCH_ONLY"] = "2"
    found = differences(template, env)
    assert "BatchFunction: BATCH_ONLY missing" in found
    assert {f"{fn}: NEW_SETTING missing" for fn in env} <= set(found)


@pytest.mark.unit
def test_env_file_is_what_the_command_writes_for_local(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """events/env.json is regenerated, not edited: `python -m gatewayctl env --local --out events/env.json`."""
    monkeypatch.delenv("AWS_PORT", raising=False)
    assert main(["env", "--local"]) == 0
    out, err = capsys.readouterr()
    assert out == ENV_FILE.read_text(), "run: python -m gatewayctl env --local --out events/env.json"
    assert "AWS_ACCESS_KEY_ID=local" in err and "--env-vars" in err  # sam gets dummy credentials


@pytest.mark.unit
def test_local_file_points_every_function_at_the_emulation_from_a_container() -> None:
    env = json.loads(ENV_FILE.read_text())
    endpoint = f"http://{envfile.DOCKER_HOST}:{DEFAULT_AWS_PORT}"
    for function, variables in env.items():
        assert variables["AWS_ENDPOINT_URL"] == endpoint, function
        assert variables["TABLE_NAME"] == LOCAL_ENV["TABLE_NAME"]
        assert variables["CONFIG_PREFIX"] == LOCAL_ENV["CONFIG_PREFIX"]
        assert variables["BATCH_QUEUE_URL"].startswith(f"{endpoint}/")
        assert variables["AUTH_MODE"] == "dev"  # the events send DEV_API_KEY, as with make dev
    assert env["BatchFunction"]["BATCH_MAX_RECEIVES"] == "5"  # the MaxReceiveCount default
    assert env["ChatFunction"]["PORT"] == "8080"


@pytest.mark.unit
def test_aws_port_moves_the_local_endpoint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_PORT", "5123")
    assert main(["env", "--local"]) == 0
    env = json.loads(capsys.readouterr().out)
    assert env["ApiFunction"]["AWS_ENDPOINT_URL"] == f"http://{envfile.DOCKER_HOST}:5123"
    assert main(["env", "--local", "--aws-host", "172.17.0.1", "--aws-port", "5001"]) == 0
    env = json.loads(capsys.readouterr().out)
    assert env["StoreRetryFunction"]["STORE_RETRY_QUEUE_URL"].startswith("http://172.17.0.1:5001/")


@pytest.fixture
def emulation(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, dict[str, str]]]:
    """moto's server on a port of this machine, bootstrapped as `make dev` does."""
    from moto.server import ThreadedMotoServer

    from gatewayctl.local.bootstrap import bootstrap
    from tests.infra.test_packaging import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
        created = bootstrap(f"http://127.0.0.1:{port}", TEST_CONFIG_DIR, apply_env=False)
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # bootstrap() set it in this process
        yield port, created
    finally:
        server.stop()


def test_local_file_runs_a_handler_against_the_emulation(emulation: tuple[int, dict[str, str]]) -> None:
    """What the container sees, from this machine: a fresh process holding only the file's values
    for the emulation on its port (127.0.0.1 standing for the container's host.docker.internal)
    and the dummy credentials and region that sam passes."""
    port, created = emulation
    env = envfile.for_local(envfile.load_template(), "127.0.0.1", port)
    for name in (
        "BATCH_QUEUE_URL",
        "STORE_RETRY_QUEUE_URL",
        "TABLE_NAME",
        "BUCKET_NAME",
        "IDEMPOTENCY_TABLE_NAME",
    ):
        assert env["BatchFunction"][name] == created[name], name  # the emulation's own names
    sam_env = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_REGION": "us-east-1"}
    process_env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("src", "tools", ".")),
        "AWS_DEFAULT_REGION": "us-east-1",
        **sam_env,
        **env["ApiFunction"],
    }
    script = (
        "import json, sys\n"
        "from gatewayctl.local.context import LambdaContext\n"
        "from handler.entrypoints.http import lambda_handler\n"
        "print(json.dumps(lambda_handler(json.load(sys.stdin), LambdaContext())))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=(EVENTS_DIR / "chat_completion.json").read_text(),
        env=process_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout.strip().splitlines()[-1])
    assert response["statusCode"] == 200, response
    ddb = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    items = ddb.scan(TableName=env["ApiFunction"]["TABLE_NAME"])["Items"]
    assert any(i.get("sk", {}).get("S") == "COMPLETION" for i in items), "the answer is stored"


# ------------------------------------------------------------------------------------------------
# --stack: a deployed stack (emulated: tests/infra/emulated_stack.py)
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def stack_outputs(aws: dict[str, str]) -> dict[str, str]:
    return create_stack(STACK, REGION, STACK_PARAMETERS)


@pytest.mark.unit
def test_stack_file_gives_each_function_the_deployed_values(
    stack_outputs: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    out = tmp_path / "env.stack.json"
    assert main(["env", "--stack", STACK, "--region", REGION, "--out", str(out)]) == 0
    assert f"--region {REGION}" in capsys.readouterr().err
    env = json.loads(out.read_text())
    assert differences(load_template(), env) == []
    for function, variables in env.items():
        assert variables["TABLE_NAME"] == stack_outputs["TableName"] != LOCAL_ENV["TABLE_NAME"], function
        assert variables["IDEMPOTENCY_TABLE_NAME"] == stack_outputs["IdempotencyTableName"]
        assert variables["BUCKET_NAME"] == stack_outputs["BucketName"] == f"{STACK}-123456789012-{REGION}"
        assert variables["BATCH_QUEUE_URL"] == stack_outputs["BatchQueueUrl"]
        assert variables["STORE_RETRY_QUEUE_URL"] == stack_outputs["StoreRetryQueueUrl"]
        assert variables["CONFIG_PREFIX"] == stack_outputs["ConfigPrefix"] == "/cg-envtest"
        assert variables["POWERTOOLS_LOG_LEVEL"] == "DEBUG"  # the stack's parameter, not the default
        assert variables["AUTH_MODE"] == "keys"
        assert variables["AWS_ENDPOINT_URL"] == ""  # AWS's own endpoints
    assert env["BatchFunction"]["BATCH_MAX_RECEIVES"] == "7"
    assert env["ChatFunction"]["AWS_LWA_INVOKE_MODE"] == "response_stream"


@pytest.mark.unit
def test_a_variable_no_output_gives_is_refused_by_name(stack_outputs: dict[str, str], tmp_path: Any) -> None:
    """A variable naming a resource no output names can't be known from outside the stack: the
    command says which, rather than writing "" (what sam would give the function)."""
    template = envfile.load_template()
    template["Globals"]["Function"]["Environment"]["Variables"]["ALARMS"] = {"Ref": "ApiServerErrorRateAlarm"}
    with pytest.raises(
        envfile.EnvFileError, match=r"ApiFunction ALARMS: nothing gives !Ref ApiServerErrorRateAlarm"
    ):
        envfile.for_stack(describe(STACK, REGION), template)


@pytest.mark.unit
def test_a_stack_in_another_region_is_not_found(
    stack_outputs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["env", "--stack", STACK, "--region", "us-west-2"]) == 1
    err = capsys.readouterr().err
    assert f"no stack '{STACK}' in us-west-2" in err and "--region" in err


@pytest.mark.unit
@pytest.mark.parametrize("service", ["dynamodb", "sqs", "s3", "ssm", "bedrock-runtime", "lambda"])
def test_the_deployed_empty_endpoint_leaves_botocore_on_aws(
    monkeypatch: pytest.MonkeyPatch, service: str
) -> None:
    """The template declares AWS_ENDPOINT_URL on every function, empty, so that the env file can set
    it for sam; on AWS an empty value must mean botocore's own endpoints, not a broken URL."""
    import botocore.session

    assert load_template()["Globals"]["Function"]["Environment"]["Variables"]["AWS_ENDPOINT_URL"] == ""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "")
    client = botocore.session.get_session().create_client(
        service, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    assert (
        client.meta.endpoint_url.startswith("https://")
        and "eu-west-1.amazonaws.com" in client.meta.endpoint_url
    )
