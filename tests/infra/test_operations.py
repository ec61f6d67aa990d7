"""What watches and bounds the deployed stack: API Gateway access logs, reserved concurrency, the
failure destination of S3 batch uploads, and (below) the dashboard and the alarms."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.infra.sam import load_template, resources_of_type
from tests.infra.test_template import cfn, deployed_with, props, resource, text_of


# ------------------------------------------------------------------------------------------------
# Access logs
# ------------------------------------------------------------------------------------------------
def access_log_setting() -> dict[str, Any]:
    [stage] = resources_of_type(cfn(), "AWS::ApiGateway::Stage").values()
    return stage["Properties"]["AccessLogSetting"]  # type: ignore[no-any-return]


def access_log_fields() -> dict[str, str]:
    """The access log format as API Gateway would fill it in: each `$context` variable replaced by
    its name, so that the format must be one JSON object whatever the values."""
    text = access_log_setting()["Format"]
    quoted = re.sub(r"\$context\.error\.messageString", '"error.messageString"', text)
    return json.loads(re.sub(r"\$context\.([A-Za-z.]+)", r"\1", quoted))  # type: ignore[no-any-return]


def test_api_access_logs_are_json_lines_with_the_request_figures() -> None:
    fields = access_log_fields()
    assert {
        "requestId": "requestId",
        "httpMethod": "httpMethod",
        "path": "path",
        "status": "status",
        "responseLatency": "responseLatency",
        "integrationLatency": "integration.latency",
    }.items() <= fields.items()


def test_access_logs_never_carry_headers_bodies_or_keys() -> None:
    """`Authorization: Bearer <key>` must not reach a log: no header, no authorizer output, no body,
    no API key (only context variables that hold none of them)."""
    text = access_log_setting()["Format"]
    used = set(re.findall(r"\$context\.([A-Za-z.]+)", text))
    assert "$input" not in text and "$util" not in text and "$method" not in text
    for variable in used:
        lowered = variable.lower()
        assert not lowered.startswith(("authorizer", "requestoverride", "responseoverride")), variable
        assert "header" not in lowered and "apikey" not in lowered and "body" not in lowered, variable
    assert "authorization" not in text.lower()


def test_access_logs_go_to_their_own_group_with_a_retention() -> None:
    assert access_log_setting()["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    group = resource("ApiAccessLogGroup")
    assert group["Properties"]["RetentionInDays"] == {"Ref": "AccessLogRetentionDays"}
    assert group["DeletionPolicy"] == "Delete"
    parameters = load_template()["Parameters"]
    assert (
        parameters["AccessLogRetentionDays"]["AllowedValues"]
        == parameters["LogRetentionDays"]["AllowedValues"]
    )


def test_the_account_logging_role_is_set_before_the_stage_and_outlives_the_stack() -> None:
    """API Gateway refuses a stage with access logs until the account's CloudWatch Logs role is set;
    the stage names the log group, whose tag names the account setting: so it comes first."""
    account = resource("ApiGatewayAccount")
    assert account["Properties"]["CloudWatchRoleArn"] == {"Fn::GetAtt": ["ApiGatewayLogsRole", "Arn"]}
    [tag] = props("ApiAccessLogGroup")["Tags"]
    assert tag["Value"] == {"Ref": "ApiGatewayAccount"}
    for logical_id in ("ApiGatewayAccount", "ApiGatewayLogsRole"):
        assert resource(logical_id)["DeletionPolicy"] == "Retain", logical_id
    [policy] = props("ApiGatewayLogsRole")["Policies"]
    [statement] = policy["PolicyDocument"]["Statement"]
    assert all(a.startswith("logs:") for a in statement["Action"])
    assert text_of(statement["Resource"]) == "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:*"


def test_an_account_that_already_has_the_logging_role_keeps_it() -> None:
    template = deployed_with(ConfigureApiGatewayAccount="false")
    assert not resources_of_type(template, "AWS::ApiGateway::Account")
    assert "ApiGatewayLogsRole" not in template["Resources"]
    assert "Tags" not in template["Resources"]["ApiAccessLogGroup"]["Properties"]
    [stage] = resources_of_type(template, "AWS::ApiGateway::Stage").values()
    assert "AccessLogSetting" in stage["Properties"]


# ------------------------------------------------------------------------------------------------
# Concurrency
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("function", "parameter"),
    [("ChatFunction", "ChatReservedConcurrency"), ("ApiFunction", "ApiReservedConcurrency")],
)
def test_reserved_concurrency_is_a_parameter_and_zero_means_none(function: str, parameter: str) -> None:
    assert load_template()["Parameters"][parameter]["Default"] == 0
    assert "ReservedConcurrentExecutions" not in props(function)
    reserved = deployed_with(**{parameter: "150"})["Resources"][function]["Properties"]
    assert reserved["ReservedConcurrentExecutions"] == "150"


def test_the_concurrency_comment_says_why() -> None:
    """Rate throttling does not bound concurrency; the template says so where the parameters are."""
    from tests.infra.sam import template_text

    text = " ".join(template_text().split())
    assert "15 minutes" in text and "requests per second, not requests in flight" in text


# ------------------------------------------------------------------------------------------------
# S3 -> BatchFunction failures
# ------------------------------------------------------------------------------------------------
def test_failed_batch_uploads_go_to_a_failure_queue() -> None:
    [config] = resources_of_type(cfn(), "AWS::Lambda::EventInvokeConfig").values()
    p = config["Properties"]
    assert p["FunctionName"] == {"Ref": "BatchFunction"}
    assert p["Qualifier"] == "$LATEST"
    assert p["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["BatchInputFailureQueue", "Arn"]
    }
    assert p["MaximumRetryAttempts"] == 2
    queue = props("BatchInputFailureQueue")
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 1209600
    assert "BatchInputFailureQueueUrl" in cfn()["Outputs"]
