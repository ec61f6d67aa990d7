"""`template.yaml` and `samconfig.toml`, checked offline.

cfn-lint runs on the SAM template and on the CloudFormation template that the SAM transform produces
(the second pass is the one that sees circular references). The rest reads the translated template:
the streamed route's integration, the routes, IAM least privilege, queues, bucket, tables, API
throttling.
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
from collections.abc import Iterable
from functools import cache
from typing import Any

import pytest

from tests.infra.sam import (
    ROOT,
    load_template,
    resolve,
    resources_of_type,
    template_text,
    translate,
    translated_template,
)

REGIONS = ["us-east-1", "eu-west-1"]
STREAMED_PATH = "/api/v1/chat/completions"
FUNCTIONS = ("ApiFunction", "ChatFunction", "BatchFunction", "StoreRetryFunction")


def alias(function: str) -> str:
    """The `live` alias SAM makes for AutoPublishAlias: what API Gateway, the SQS mappings and the
    bucket notification invoke (a published version, so that SnapStart can apply)."""
    return f"{function}Aliaslive"


# Warnings accepted from cfn-lint, as (rule id, text the message must contain): why each is fine.
SAM_TEMPLATE_IGNORES: dict[tuple[str, str], str] = {}
TRANSLATED_IGNORES: dict[tuple[str, str], str] = {}


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
def lint(text: str) -> list[tuple[str, str]]:
    """cfn-lint's errors and warnings (not informational findings) as (rule id, message)."""
    from cfnlint.api import lint as cfn_lint  # type: ignore[import-untyped]
    from cfnlint.config import ManualArgs  # type: ignore[import-untyped]

    matches = cfn_lint(text, config=ManualArgs(regions=REGIONS))
    return [(m.rule.id, f"{m.message} (at {'/'.join(str(p) for p in m.path or [])})") for m in matches]


def circular_dependencies(text: str) -> list[str]:
    """cfn-lint's circular-dependency rule (E3004) alone."""
    from cfnlint.api import lint as cfn_lint
    from cfnlint.rules import RulesCollection  # type: ignore[import-untyped]
    from cfnlint.rules.resources.CircularDependency import CircularDependency  # type: ignore[import-untyped]

    rules = RulesCollection()
    rules.register(CircularDependency())
    return [m.message for m in cfn_lint(text, rules=rules, regions=REGIONS[:1])]


def unexpected(findings: list[tuple[str, str]], ignores: dict[tuple[str, str], str]) -> list[str]:
    return [
        f"{rule}: {message}"
        for rule, message in findings
        if rule.startswith("E") or not any(rule == i_rule and text in message for i_rule, text in ignores)
    ]


@cache
def _raw() -> dict[str, Any]:
    return translated_template()


@cache
def _cfn() -> dict[str, Any]:
    return resolve(_raw())


def raw_cfn() -> dict[str, Any]:
    """The translated template with its Conditions (what cfn-lint checks)."""
    return _raw()


def cfn() -> dict[str, Any]:
    """The translated template as deployed with the default parameters."""
    return _cfn()


@cache
def _deployed_with(parameters: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    return resolve(_raw(), dict(parameters))


def deployed_with(**parameters: str) -> dict[str, Any]:
    """The translated template as deployed with these parameters (defaults for the rest)."""
    return _deployed_with(tuple(sorted(parameters.items())))


def resource(logical_id: str) -> dict[str, Any]:
    return cfn()["Resources"][logical_id]  # type: ignore[no-any-return]


def props(logical_id: str) -> dict[str, Any]:
    return resource(logical_id)["Properties"]  # type: ignore[no-any-return]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def text_of(value: Any) -> str:
    """A resource reference as one string, whatever its intrinsic form."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return sub if isinstance(sub, str) else str(sub[0])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return "${" + (".".join(target) if isinstance(target, list) else str(target)) + "}"
    if isinstance(value, dict) and "Ref" in value:
        return "${" + str(value["Ref"]) + "}"
    return json.dumps(value, sort_keys=True)


def role_of(function: str) -> str:
    role = props(function)["Role"]
    assert isinstance(role, dict) and role.get("Fn::GetAtt", [None])[1] == "Arn", role
    return role["Fn::GetAtt"][0]  # type: ignore[no-any-return]


def statements(function: str) -> list[dict[str, Any]]:
    role = props(role_of(function))
    found = []
    for policy in role.get("Policies", []):
        found.extend(as_list(policy["PolicyDocument"]["Statement"]))
    return found


def actions(stmts: Iterable[dict[str, Any]]) -> set[str]:
    return {action for s in stmts for action in as_list(s["Action"])}


def granting(function: str, prefix: str) -> list[dict[str, Any]]:
    return [s for s in statements(function) if any(a.startswith(prefix) for a in as_list(s["Action"]))]


def resources_for(function: str, action: str) -> list[str]:
    return [
        text_of(r)
        for s in statements(function)
        if action in as_list(s["Action"])
        for r in as_list(s["Resource"])
    ]


def integration(path: str, method: str) -> dict[str, Any]:
    return props("Api")["Body"]["paths"][path][method]["x-amazon-apigateway-integration"]  # type: ignore[no-any-return]


def env(function: str) -> dict[str, Any]:
    return props(function)["Environment"]["Variables"]  # type: ignore[no-any-return]


BUCKET = "${AWS::StackName}-${AWS::AccountId}-${AWS::Region}"
TOOLS = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${ToolFunctionNamePattern}"


# ------------------------------------------------------------------------------------------------
# cfn-lint
# ------------------------------------------------------------------------------------------------
def test_sam_template_passes_cfn_lint() -> None:
    assert unexpected(lint(template_text()), SAM_TEMPLATE_IGNORES) == []


def test_translated_template_passes_cfn_lint() -> None:
    assert unexpected(lint(json.dumps(raw_cfn())), TRANSLATED_IGNORES) == []


def test_translated_lint_catches_the_bucket_function_cycle() -> None:
    """The check above is not vacuous: naming the bucket by Ref (the classic mistake) is a cycle
    (bucket notification -> function -> environment -> bucket) that the translated lint reports."""
    template = load_template()
    template["Globals"]["Function"]["Environment"]["Variables"]["BUCKET_NAME"] = {"Ref": "Bucket"}
    cycles = circular_dependencies(json.dumps(translate(template)))
    assert any("Bucket" in message for message in cycles), cycles


# ------------------------------------------------------------------------------------------------
# Functions, layer, routes
# ------------------------------------------------------------------------------------------------
def test_layer_is_built_from_layers_deps_for_python313_arm64() -> None:
    layer = load_template()["Resources"]["DepsLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"] == "layers/deps"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    assert (ROOT / "layers" / "deps" / "requirements.txt").is_file()
    # The makefile build installs arm64 / CPython 3.13 wheels and drops what the runtime provides.
    makefile = (ROOT / "layers" / "deps" / "Makefile").read_text()
    assert "build-DepsLayer:" in makefile
    assert "PLATFORM ?= manylinux2014_aarch64" in makefile and "PYTHON_VERSION ?= 3.13" in makefile
    assert "--platform $(PLATFORM)" in makefile and "--python-version $(PYTHON_VERSION)" in makefile
    # ... and ships CPython 3.13 bytecode (tests/infra/test_build.py runs it and checks the output).
    assert "compileall" in makefile and "--invalidation-mode unchecked-hash" in makefile
    assert "botocore" in makefile.split("RUNTIME_PROVIDED :=")[1].splitlines()[0]


def test_layer_name_is_per_stack() -> None:
    """A layer's name is shared by every stack of an account and region: two stacks must not
    publish versions of one layer."""
    [layer] = [r for lid, r in resources_of_type(cfn(), "AWS::Lambda::LayerVersion").items()]
    assert text_of(layer["Properties"]["LayerName"]) == "${AWS::StackName}-deps"


def test_buffered_function_ends_before_api_gateway_gives_up() -> None:
    """API Gateway answers 504 after 29 s on a buffered integration; ApiFunction must not outlive
    that. The streamed route may run 15 minutes, and its function as long."""
    assert props("ApiFunction")["Timeout"] < 29
    assert "Timeout" not in load_template()["Globals"]["Function"]
    buffered = integration("/{proxy+}", "x-amazon-apigateway-any-method")
    assert buffered.get("timeoutInMillis", 29000) <= 29000


HANDLERS = {
    "ApiFunction": "handler.entrypoints.http.lambda_handler",
    "ChatFunction": "run.sh",
    "BatchFunction": "handler.entrypoints.batch.lambda_handler",
    "StoreRetryFunction": "handler.entrypoints.store_retry.lambda_handler",
}


def test_functions_share_code_runtime_architecture_and_the_deps_layer() -> None:
    sam = load_template()
    assert sam["Globals"]["Function"]["CodeUri"] == "src/"
    layer_ids = [
        lid for lid in resources_of_type(cfn(), "AWS::Lambda::LayerVersion") if lid.startswith("DepsLayer")
    ]
    assert len(layer_ids) == 1
    for name, handler in HANDLERS.items():
        p = props(name)
        assert p["Handler"] == handler
        assert p["Runtime"] == "python3.13"
        assert p["Architectures"] == ["arm64"]
        assert p["TracingConfig"] == {"Mode": "Active"}
        assert {"Ref": layer_ids[0]} in p["Layers"], name
    assert set(resources_of_type(cfn(), "AWS::Lambda::Function")) == set(FUNCTIONS)


def test_function_code_is_built_by_src_makefile() -> None:
    """SAM's makefile build method runs `make build-<LogicalId>` in the CodeUri directory (and, for
    functions sharing a CodeUri, only the first function's target): src/Makefile has one per function,
    and each byte-compiles the code (tests/infra/test_build.py runs it)."""
    sam = load_template()["Resources"]
    makefile = (ROOT / "src" / "Makefile").read_text(encoding="utf-8")
    for function in FUNCTIONS:
        assert sam[function]["Metadata"] == {"BuildMethod": "makefile"}, function
    targets = re.search(r"^FUNCTIONS := (.+)$", makefile, re.MULTILINE)
    assert targets is not None and set(targets.group(1).split()) == set(FUNCTIONS)
    assert "$(addprefix build-,$(FUNCTIONS)):" in makefile
    assert "compileall" in makefile and "--invalidation-mode unchecked-hash" in makefile


SNAPSTART_FUNCTIONS = ("ApiFunction", "BatchFunction", "StoreRetryFunction")


def test_snapstart_is_a_parameter_off_by_default_on_published_versions() -> None:
    """SnapStart applies to published versions only (AutoPublishAlias publishes one per deploy) and
    is off unless the SnapStart parameter says "on"
    (https://docs.aws.amazon.com/lambda/latest/dg/snapstart-activate.html)."""
    sam = load_template()
    parameter = sam["Parameters"]["SnapStart"]
    assert parameter["Default"] == "off" and parameter["AllowedValues"] == ["off", "on"]
    assert sam["Conditions"]["SnapStartOn"] == {"Fn::Equals": [{"Ref": "SnapStart"}, "on"]}
    assert sam["Globals"]["Function"]["AutoPublishAlias"] == "live"
    for function in FUNCTIONS:
        assert resource(alias(function))["Type"] == "AWS::Lambda::Alias"
        snapstart = sam["Resources"][function]["Properties"].get("SnapStart")  # as written
        if function in SNAPSTART_FUNCTIONS:
            assert snapstart == {"ApplyOn": {"Fn::If": ["SnapStartOn", "PublishedVersions", "None"]}}
        else:  # ChatFunction: its hooks could not run in uvicorn's process (see template.yaml)
            assert snapstart is None, function


@pytest.mark.parametrize("function", SNAPSTART_FUNCTIONS)
def test_snapstart_functions_register_the_runtime_hooks(function: str) -> None:
    """Lambda ignores hooks that the handler's module does not import
    (https://docs.aws.amazon.com/lambda/latest/dg/snapstart-runtime-hooks-python.html)."""
    module = HANDLERS[function].rpartition(".")[0]
    source = (ROOT / "src" / (module.replace(".", "/") + ".py")).read_text(encoding="utf-8")
    assert re.search(r"^snapstart\.register\(", source, re.MULTILINE), module


@pytest.mark.parametrize("function", ["ApiFunction", "BatchFunction", "StoreRetryFunction"])
def test_python_handlers_exist_in_src(function: str) -> None:
    """The dotted handler names a module under src/ that defines `lambda_handler` (read, not imported)."""
    module, _, attr = HANDLERS[function].rpartition(".")
    path = ROOT / "src" / (module.replace(".", "/") + ".py")
    assert path.is_file(), f"{function}'s handler module {path.relative_to(ROOT)} does not exist yet"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    for node in tree.body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        names.update(t.id for t in targets if isinstance(t, ast.Name))
    assert attr in names, f"{path.relative_to(ROOT)} defines no {attr}"


def test_chat_function_runs_under_the_lambda_web_adapter() -> None:
    assert (ROOT / "src" / "run.sh").is_file()
    variables = env("ChatFunction")
    assert variables["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert variables["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert variables["AWS_LWA_READINESS_CHECK_PATH"] == "/health"
    assert variables["PORT"] == "8080"
    adapter = [
        text_of(layer) for layer in props("ChatFunction")["Layers"] if "LambdaAdapterLayer" in text_of(layer)
    ]
    assert adapter == [
        "arn:${AWS::Partition}:lambda:${AWS::Region}:753240598075:layer:LambdaAdapterLayerArm64:"
        "${WebAdapterLayerVersion}"
    ]
    # Availability differs by region: the version is a parameter, defaulting to a published one.
    version = load_template()["Parameters"]["WebAdapterLayerVersion"]
    assert version["Type"] == "Number" and version["Default"] >= 27
    # The integration may stream for 15 minutes; the function must be allowed to run as long.
    assert props("ChatFunction")["Timeout"] == 900
    for other in ("ApiFunction", "BatchFunction", "StoreRetryFunction"):
        assert "AWS_LAMBDA_EXEC_WRAPPER" not in env(other)


def test_streamed_route_is_a_response_streaming_integration_to_chat_function() -> None:
    chat = integration(STREAMED_PATH, "post")
    uri = text_of(chat["uri"])
    assert chat["type"] == "aws_proxy"
    assert uri.endswith("/response-streaming-invocations"), uri
    assert "${" + alias("ChatFunction") + "}" in uri
    assert chat["responseTransferMode"] == "STREAM"
    assert chat["timeoutInMillis"] == 900000


def test_stream_instead_of_response_stream_would_be_caught() -> None:
    """DESIGN.md's trap: `ResponseTransferMode: STREAM` in SAM silently gives a buffered integration.
    The route check above tells the two apart."""
    template = load_template()
    event = template["Resources"]["ChatFunction"]["Properties"]["Events"]["ChatCompletions"]["Properties"]
    event["ResponseTransferMode"] = "STREAM"
    body = translate(template)["Resources"]["Api"]["Properties"]["Body"]
    buffered = body["paths"][STREAMED_PATH]["post"]["x-amazon-apigateway-integration"]
    assert "responseTransferMode" not in buffered
    assert text_of(buffered["uri"]).endswith("/invocations")


def test_every_other_route_goes_to_api_function_buffered() -> None:
    paths = props("Api")["Body"]["paths"]
    assert set(paths) == {STREAMED_PATH, "/{proxy+}"}
    assert set(paths[STREAMED_PATH]) == {"post"}
    routes = [(p, m) for p, methods in paths.items() for m in methods if (p, m) != (STREAMED_PATH, "post")]
    assert routes == [("/{proxy+}", "x-amazon-apigateway-any-method")]
    for path, method in routes:
        target = integration(path, method)
        uri = text_of(target["uri"])
        assert target["type"] == "aws_proxy"
        assert uri.endswith("/2015-03-31/functions/${" + alias("ApiFunction") + "}/invocations")
        assert "responseTransferMode" not in target


def test_api_gateway_may_invoke_both_http_functions() -> None:
    permissions = resources_of_type(cfn(), "AWS::Lambda::Permission")
    invoked = {
        p["Properties"]["FunctionName"]["Ref"]
        for p in permissions.values()
        if p["Properties"]["Principal"] == "apigateway.amazonaws.com"
    }
    assert invoked == {alias("ApiFunction"), alias("ChatFunction")}


# ------------------------------------------------------------------------------------------------
# Environment
# ------------------------------------------------------------------------------------------------
def test_every_function_gets_the_shared_environment() -> None:
    parameters = load_template()["Parameters"]
    assert parameters["ConfigPrefix"]["Default"] == "/chat-gateway"
    assert parameters["ConfigMaxAgeSeconds"]["Default"] == 60
    for function in FUNCTIONS:
        variables = env(function)
        assert variables["TABLE_NAME"] == {"Ref": "Table"}
        assert variables["IDEMPOTENCY_TABLE_NAME"] == {"Ref": "IdempotencyTable"}
        assert variables["CONFIG_PREFIX"] == {"Ref": "ConfigPrefix"}
        assert variables["CONFIG_MAX_AGE_S"] == {"Ref": "ConfigMaxAgeSeconds"}
        assert text_of(variables["BUCKET_NAME"]) == BUCKET
        assert variables["BATCH_QUEUE_URL"] == {"Ref": "BatchQueue"}
        assert variables["STORE_RETRY_QUEUE_URL"] == {"Ref": "StoreRetryQueue"}
        assert variables["AUTH_MODE"] == "keys"  # auth is never off in a deployment
        assert variables["LOG_CONTENT"] == "false"
        assert variables["POWERTOOLS_SERVICE_NAME"] == "chat-gateway"
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "ChatGateway"
        assert variables["POWERTOOLS_LOG_LEVEL"] == {"Ref": "LogLevel"}


def test_environment_names_are_the_ones_the_code_reads() -> None:
    """A misspelt variable would silently fall back to a default: every name Globals sets is a field
    of `handler.settings.Settings` or appears in the code (Powertools reads its own)."""
    from handler.settings import Settings

    fields = {name.upper() for name in Settings.model_fields}
    code = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "src" / "handler").rglob("*.py"))
    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    unread = [n for n in variables if not n.startswith("POWERTOOLS_") and n not in fields and n not in code]
    assert unread == []


# ------------------------------------------------------------------------------------------------
# IAM least privilege
# ------------------------------------------------------------------------------------------------
DDB_READ_WRITE = {
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
}
BASE = {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
CONFIG = {"ssm:GetParametersByPath", "ssm:GetParameter", "ssm:GetParameters", "kms:Decrypt"}
MODELS = {"bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream", "lambda:InvokeFunction"}
SQS_CONSUME = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}

ALLOWED_ACTIONS: dict[str, set[str]] = {
    "ApiFunction": set.union(
        BASE,
        DDB_READ_WRITE,
        CONFIG,
        MODELS,
        {"sqs:SendMessage", "s3:GetObject", "s3:PutObject", "s3:ListBucket"},
    ),
    "ChatFunction": set.union(
        BASE, DDB_READ_WRITE, CONFIG, MODELS, {"sqs:SendMessage", "s3:GetObject", "s3:PutObject"}
    ),
    "BatchFunction": set.union(
        BASE,
        DDB_READ_WRITE,
        {"dynamodb:DeleteItem"},  # Powertools Idempotency drops the record of an item that failed
        CONFIG,
        MODELS,
        SQS_CONSUME,
        {"sqs:SendMessage", "events:PutEvents"},  # fan-out, store retries, reply destinations
        {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListBucket"},
    ),
    "StoreRetryFunction": set.union(
        BASE,
        {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"},
        SQS_CONSUME,
        {"s3:GetObject", "s3:PutObject"},
    ),
}
# What each function cannot work without (so that the allow-lists are not satisfied by an empty role).
REQUIRED_ACTIONS: dict[str, set[str]] = {
    "ApiFunction": {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "ssm:GetParametersByPath",
        "kms:Decrypt",
        "bedrock:InvokeModel",
        "lambda:InvokeFunction",
        "sqs:SendMessage",
        "s3:GetObject",
        "s3:PutObject",
    },
    "ChatFunction": {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "ssm:GetParametersByPath",
        "kms:Decrypt",
        "bedrock:InvokeModel",
        "bedrock:InvokeModelWithResponseStream",
        "lambda:InvokeFunction",
        "sqs:SendMessage",
        "s3:PutObject",
    },
    "BatchFunction": {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "ssm:GetParametersByPath",
        "bedrock:InvokeModel",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:SendMessage",
        "s3:GetObject",
        "s3:PutObject",
    },
    "StoreRetryFunction": {"dynamodb:PutItem", "sqs:ReceiveMessage", "sqs:DeleteMessage", "s3:GetObject"},
}


def test_roles_are_written_out_with_no_managed_policies_and_no_names() -> None:
    """SAM's generated roles would attach AWS managed policies with `Resource: "*"` (logs, SQS
    polling); ours carry only inline statements. No names, so CAPABILITY_IAM is enough."""
    roles = resources_of_type(cfn(), "AWS::IAM::Role")
    # Besides the functions' roles, API Gateway's account-level logging role (test_operations.py).
    assert set(roles) == {role_of(f) for f in FUNCTIONS} | {"ApiGatewayLogsRole"}
    for logical_id, role in roles.items():
        assert not role["Properties"].get("ManagedPolicyArns"), logical_id
        assert "RoleName" not in role["Properties"], logical_id
        principal = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        service = "apigateway" if logical_id == "ApiGatewayLogsRole" else "lambda"
        assert principal == {"Service": f"{service}.amazonaws.com"}
    assert not resources_of_type(cfn(), "AWS::IAM::Policy")
    assert not resources_of_type(cfn(), "AWS::IAM::ManagedPolicy")


def test_no_wildcard_resource_except_xray() -> None:
    for function in FUNCTIONS:
        for stmt in statements(function):
            assert stmt["Effect"] == "Allow"
            assert "NotAction" not in stmt and "NotResource" not in stmt
            if "*" in as_list(stmt["Resource"]):
                assert all(a.startswith("xray:") for a in as_list(stmt["Action"])), (function, stmt)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_gets_only_the_actions_it_uses(function: str) -> None:
    granted = actions(statements(function))
    assert granted <= ALLOWED_ACTIONS[function], granted - ALLOWED_ACTIONS[function]
    assert REQUIRED_ACTIONS[function] <= granted, REQUIRED_ACTIONS[function] - granted
    assert not any(a.endswith("*") for a in granted), "no action wildcards"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_resources_are_scoped(function: str) -> None:
    for stmt in granting(function, "dynamodb:"):
        for r in map(text_of, as_list(stmt["Resource"])):
            assert r in {"${Table.Arn}", "${Table.Arn}/index/*", "${IdempotencyTable.Arn}"}, r
    for r in resources_for(function, "ssm:GetParametersByPath"):
        assert r in {
            "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${ConfigPrefix}",
            "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${ConfigPrefix}/*",
        }, r
    for stmt in granting(function, "kms:"):
        assert as_list(stmt["Action"]) == ["kms:Decrypt"]
        assert text_of(stmt["Resource"]).startswith(
            "arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/"
        )
        assert (
            text_of(stmt["Condition"]["StringEquals"]["kms:ViaService"]) == "ssm.${AWS::Region}.amazonaws.com"
        )
    for r in resources_for(function, "bedrock:InvokeModel"):
        assert re.fullmatch(
            r"arn:\$\{AWS::Partition\}:bedrock:\*:(\$\{AWS::AccountId\})?:"
            r"(foundation-model|inference-profile|application-inference-profile)/\*",
            r,
        ), r
    for r in resources_for(function, "lambda:InvokeFunction"):
        assert r == TOOLS
    for r in resources_for(function, "s3:GetObject") + resources_for(function, "s3:PutObject"):
        assert r in {
            f"arn:${{AWS::Partition}}:s3:::{BUCKET}/batches/*",
            f"arn:${{AWS::Partition}}:s3:::{BUCKET}/payloads/*",
        }
    for stmt in granting(function, "s3:ListBucket"):
        assert text_of(stmt["Resource"]) == f"arn:${{AWS::Partition}}:s3:::{BUCKET}"
        assert stmt["Condition"]["StringLike"]["s3:prefix"] == ["batches/*", "payloads/*"]
    for stmt in granting(function, "logs:"):
        assert text_of(stmt["Resource"]) == f"${{{function}LogGroup.Arn}}"


def test_queue_and_bucket_access_per_function() -> None:
    assert set(resources_for("ApiFunction", "sqs:SendMessage")) == {
        "${StoreRetryQueue.Arn}",
        "${BatchQueue.Arn}",
    }
    assert set(resources_for("ChatFunction", "sqs:SendMessage")) == {"${StoreRetryQueue.Arn}"}
    assert set(resources_for("BatchFunction", "sqs:ReceiveMessage")) == {"${BatchQueue.Arn}"}
    assert set(resources_for("StoreRetryFunction", "sqs:ReceiveMessage")) == {"${StoreRetryQueue.Arn}"}
    assert "${BatchQueue.Arn}" in resources_for("BatchFunction", "sqs:SendMessage")
    # Lambda sends a failed asynchronous invocation to its destination with the function's role.
    assert "${BatchInputFailureQueue.Arn}" in resources_for("BatchFunction", "sqs:SendMessage")
    payloads_only = {f"arn:${{AWS::Partition}}:s3:::{BUCKET}/payloads/*"}
    assert set(resources_for("ChatFunction", "s3:PutObject")) == payloads_only
    assert set(resources_for("StoreRetryFunction", "s3:PutObject")) == payloads_only
    assert resources_for("StoreRetryFunction", "dynamodb:PutItem") == ["${Table.Arn}"]
    # Only the batch worker touches the idempotency records.
    for function in ("ApiFunction", "ChatFunction", "StoreRetryFunction"):
        assert "${IdempotencyTable.Arn}" not in {
            r for s in statements(function) for r in map(text_of, as_list(s["Resource"]))
        }


# ------------------------------------------------------------------------------------------------
# Queues, bucket, tables
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("queue", "dlq", "function"),
    [
        ("BatchQueue", "BatchDeadLetterQueue", "BatchFunction"),
        ("StoreRetryQueue", "StoreRetryDeadLetterQueue", "StoreRetryFunction"),
    ],
)
def test_queue_redrive_visibility_and_event_source(queue: str, dlq: str, function: str) -> None:
    q = props(queue)
    assert q["VisibilityTimeout"] >= 6 * props(function)["Timeout"]
    assert q["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq, "Arn"]}
    assert q["RedrivePolicy"]["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}
    assert load_template()["Parameters"]["MaxReceiveCount"]["Default"] == 5
    if function == "BatchFunction":  # the worker knows which receive is the last one
        assert env(function)["BATCH_MAX_RECEIVES"] == {"Ref": "MaxReceiveCount"}
    assert q["SqsManagedSseEnabled"] is True
    mappings = [
        m["Properties"]
        for m in resources_of_type(cfn(), "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue, "Arn"]}
    ]
    assert len(mappings) == 1
    assert mappings[0]["FunctionName"] == {"Ref": alias(function)}
    assert mappings[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_batch_input_uploads_trigger_batch_function() -> None:
    bucket = props("Bucket")
    assert text_of(bucket["BucketName"]) == BUCKET  # the same name the policies and BUCKET_NAME spell out
    [config] = bucket["NotificationConfiguration"]["LambdaConfigurations"]
    assert config["Function"] == {"Ref": alias("BatchFunction")}
    assert config["Event"] == "s3:ObjectCreated:*"
    assert config["Filter"]["S3Key"]["Rules"] == [
        {"Name": "prefix", "Value": "batches/input/"},
        {"Name": "suffix", "Value": ".jsonl"},
    ]
    permissions = resources_of_type(cfn(), "AWS::Lambda::Permission")
    s3 = [p["Properties"] for p in permissions.values() if p["Properties"]["Principal"] == "s3.amazonaws.com"]
    assert [p["FunctionName"] for p in s3] == [{"Ref": alias("BatchFunction")}]
    # Only this bucket, of this account, may start it.
    assert text_of(s3[0]["SourceArn"]) == f"arn:${{AWS::Partition}}:s3:::{BUCKET}"
    assert s3[0]["SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert "BatchInputPermission" in as_list(resource("Bucket")["DependsOn"])


def test_bucket_is_encrypted_private_and_tls_only() -> None:
    bucket = props("Bucket")
    [rule] = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    [deny] = props("BucketPolicy")["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_table_is_on_demand_with_indexes_ttl_pitr_and_sse() -> None:
    table = props("Table")
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]} == {
        name: "S" for name in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")
    }
    indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"GSI1", "GSI2"}
    for name, index in indexes.items():
        prefix = name.lower()
        assert index["KeySchema"] == [
            {"AttributeName": f"{prefix}pk", "KeyType": "HASH"},
            {"AttributeName": f"{prefix}sk", "KeyType": "RANGE"},
        ]
        assert index["Projection"] == {"ProjectionType": "ALL"}
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert resource("Table")["DeletionPolicy"] == "Retain"


def test_idempotency_table_matches_powertools_defaults() -> None:
    table = props("IdempotencyTable")
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}


# ------------------------------------------------------------------------------------------------
# API Gateway
# ------------------------------------------------------------------------------------------------
def test_api_is_regional_and_throttled_with_no_usage_plan() -> None:
    """Stage throttling is what limits requests; a usage plan would meter nothing (no method
    requires a key: issue #11 D15, tests/infra/test_traffic_limits.py)."""
    assert props("Api")["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    [stage] = resources_of_type(cfn(), "AWS::ApiGateway::Stage").values()
    assert stage["Properties"]["StageName"] == {"Ref": "Stage"}
    [settings] = stage["Properties"]["MethodSettings"]
    assert settings["ResourcePath"] == "/*" and settings["HttpMethod"] == "*"
    assert settings["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ApiThrottleBurstLimit"}
    assert resources_of_type(cfn(), "AWS::ApiGateway::UsagePlan") == {}


def test_bearer_clients_are_not_asked_for_an_api_gateway_key() -> None:
    """Clients send only `Authorization: Bearer`; the app checks it. No method requires x-api-key."""
    body = props("Api")["Body"]
    for methods in body["paths"].values():
        for method in methods.values():
            assert "security" not in method
    assert "securitySchemes" not in body.get("components", {})


def test_outputs_name_the_endpoint() -> None:
    outputs = cfn()["Outputs"]
    assert text_of(outputs["ApiUrl"]["Value"]) == (
        "https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${Stage}/api/v1"
    )
    for name in ("TableName", "BucketName", "BatchQueueUrl", "StoreRetryQueueUrl"):
        assert name in outputs


# ------------------------------------------------------------------------------------------------
# samconfig.toml
# ------------------------------------------------------------------------------------------------
def test_samconfig_has_default_and_prod_environments() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    parameters = set(load_template()["Parameters"])
    stacks = set()
    for environment in ("default", "prod"):
        stack = config[environment]["global"]["parameters"]["stack_name"]
        assert stack == stack.lower(), "the bucket is named after the stack; bucket names are lowercase"
        stacks.add(stack)
        build = config[environment]["build"]["parameters"]
        assert build["cached"] is True and build["parallel"] is True
        deploy = config[environment]["deploy"]["parameters"]
        assert deploy["capabilities"] == "CAPABILITY_IAM"
        assert deploy["resolve_s3"] is True
        overrides = dict(pair.split("=", 1) for pair in deploy["parameter_overrides"].split())
        assert set(overrides) <= parameters, set(overrides) - parameters
        assert overrides["Stage"]
    assert len(stacks) == 2
