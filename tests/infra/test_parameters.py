"""The template's optional parameters, deployed the way CloudFormation would apply their Conditions.

Each scenario resolves the translated template with some parameters set (`tests.infra.sam.resolve`)
and checks what is created, what is not, and that nothing left names a resource that is gone.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.infra.sam import resources_of_type
from tests.infra.test_template import (
    BUCKET,
    FUNCTIONS,
    TRANSLATED_IGNORES,
    as_list,
    cfn,
    deployed_with,
    lint,
    text_of,
    unexpected,
)

OLD_TABLE = "chat-gateway-Table-1A2B3C4D5E6F"
OLD_BUCKET = "chat-gateway-123456789012-eu-west-1"
TABLE_ARN = f"arn:${{AWS::Partition}}:dynamodb:${{AWS::Region}}:${{AWS::AccountId}}:table/{OLD_TABLE}"

SCENARIOS: dict[str, dict[str, str]] = {
    "defaults": {},
    "existing table": {"ExistingTableName": OLD_TABLE},
    "existing bucket": {"ExistingBucketName": OLD_BUCKET},
    "both existing": {"ExistingTableName": OLD_TABLE, "ExistingBucketName": OLD_BUCKET},
    "reserved concurrency": {"ChatReservedConcurrency": "200", "ApiReservedConcurrency": "50"},
    "api gateway account already set": {"ConfigureApiGatewayAccount": "false"},
    "alarm e-mail": {"AlarmEmail": "ops@example.com"},
}


def references(node: Any) -> set[str]:
    """Every resource or parameter a node names (Ref, GetAtt, ${...} in Sub, DependsOn aside)."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= references(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref":
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text, variables = (value, {}) if isinstance(value, str) else value
                names = {m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text)}
                found |= names - set(variables)
                found |= references(variables)
            else:
                found |= references(value)
    return found


def env(template: dict[str, Any], function: str) -> dict[str, Any]:
    return template["Resources"][function]["Properties"]["Environment"]["Variables"]  # type: ignore[no-any-return]


def role_resources(template: dict[str, Any], function: str, prefix: str) -> list[str]:
    role = template["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    found = []
    for policy in template["Resources"][role]["Properties"]["Policies"]:
        for stmt in as_list(policy["PolicyDocument"]["Statement"]):
            if any(a.startswith(prefix) for a in as_list(stmt["Action"])):
                found.extend(text_of(r) for r in as_list(stmt["Resource"]))
    return found


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_scenario_names_only_what_it_deploys(scenario: str) -> None:
    template = deployed_with(**SCENARIOS[scenario])
    known = set(template["Resources"]) | set(template["Parameters"])
    for section in ("Resources", "Outputs"):
        for logical_id, item in template[section].items():
            dangling = {r for r in references(item) if not r.startswith("AWS::") and r not in known}
            assert not dangling, (scenario, logical_id, dangling)
            for target in as_list(item.get("DependsOn", [])):
                assert target in template["Resources"], (scenario, logical_id, target)


# Resolving a scenario replaces the Refs to the parameters it sets and drops the branches not taken,
# so parameters are left unused on purpose; the template itself is linted with all its branches.
SCENARIO_IGNORES = TRANSLATED_IGNORES | {("W2001", "Parameter"): "resolved away by the scenario"}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_scenario_passes_cfn_lint(scenario: str) -> None:
    template = deployed_with(**SCENARIOS[scenario])
    assert unexpected(lint(json.dumps(template)), SCENARIO_IGNORES) == []


# ------------------------------------------------------------------------------------------------
# Retained resources, re-attached
# ------------------------------------------------------------------------------------------------
def test_by_default_the_stack_creates_the_table_and_the_bucket() -> None:
    resources = cfn()["Resources"]
    assert resources["Table"]["Type"] == "AWS::DynamoDB::Table"
    assert resources["Bucket"]["Type"] == "AWS::S3::Bucket"
    assert "BatchInputNotificationCommand" not in cfn()["Outputs"]


def test_existing_table_is_used_instead_of_a_new_one() -> None:
    template = deployed_with(ExistingTableName=OLD_TABLE)
    assert "Table" not in template["Resources"]
    assert set(resources_of_type(template, "AWS::DynamoDB::Table")) == {"IdempotencyTable"}
    for function in FUNCTIONS:
        assert env(template, function)["TABLE_NAME"] == OLD_TABLE
        granted = set(role_resources(template, function, "dynamodb:")) - {"${IdempotencyTable.Arn}"}
        assert granted and granted <= {TABLE_ARN, f"{TABLE_ARN}/index/*"}, (function, granted)
    assert template["Outputs"]["TableName"]["Value"] == OLD_TABLE
    # The bucket is still the stack's own.
    assert "Bucket" in template["Resources"]


def test_existing_bucket_is_used_instead_of_a_new_one() -> None:
    template = deployed_with(ExistingBucketName=OLD_BUCKET)
    resources = template["Resources"]
    assert not resources_of_type(template, "AWS::S3::Bucket")
    for function in FUNCTIONS:
        assert env(template, function)["BUCKET_NAME"] == OLD_BUCKET
        for arn in role_resources(template, function, "s3:"):
            assert arn.startswith(f"arn:${{AWS::Partition}}:s3:::{OLD_BUCKET}"), (function, arn)
            assert BUCKET not in arn
    # The TLS-only policy is put back on the retained bucket, and S3 may still start batches.
    policy = resources["BucketPolicy"]["Properties"]
    assert policy["Bucket"] == OLD_BUCKET
    assert [text_of(r) for r in policy["PolicyDocument"]["Statement"][0]["Resource"]] == [
        f"arn:${{AWS::Partition}}:s3:::{OLD_BUCKET}",
        f"arn:${{AWS::Partition}}:s3:::{OLD_BUCKET}/*",
    ]
    permission = resources["BatchInputPermission"]["Properties"]
    assert text_of(permission["SourceArn"]) == f"arn:${{AWS::Partition}}:s3:::{OLD_BUCKET}"
    assert template["Outputs"]["BucketName"]["Value"] == OLD_BUCKET
    assert "Table" in resources


def test_existing_bucket_output_is_the_command_that_restores_its_notification() -> None:
    """The stack can't set a notification on a bucket it doesn't own: the output prints the one
    command that does, with the same event and filter as the bucket the stack creates."""
    template = deployed_with(ExistingBucketName=OLD_BUCKET)
    command = text_of(template["Outputs"]["BatchInputNotificationCommand"]["Value"])
    assert command.startswith("aws s3api put-bucket-notification-configuration ")
    assert f"--bucket {OLD_BUCKET} " in command
    configuration = json.loads(command.split("--notification-configuration ", 1)[1].strip("'"))
    [target] = configuration["LambdaFunctionConfigurations"]
    assert target["LambdaFunctionArn"] == "${BatchFunctionAliaslive}"  # the alias, as the bucket's own
    own = cfn()["Resources"]["Bucket"]["Properties"]["NotificationConfiguration"]
    [expected] = own["LambdaConfigurations"]
    assert target["Events"] == [expected["Event"]]
    assert target["Filter"]["Key"]["FilterRules"] == expected["Filter"]["S3Key"]["Rules"]


def test_table_and_bucket_are_retained_and_nothing_else_that_holds_data() -> None:
    """What `sam delete` keeps (README "Deploying"): the table and the bucket. Everything else
    that holds data goes with the stack (queues, the idempotency records, logs)."""
    resources = cfn()["Resources"]
    retained = {lid for lid, r in resources.items() if r.get("DeletionPolicy") == "Retain"}
    assert {"Table", "Bucket"} <= retained
    for logical_id in retained:
        if resources[logical_id]["Type"] == "AWS::Lambda::Version":
            continue  # SAM's AutoPublishAlias keeps old versions (code, no data) on purpose
        assert resources[logical_id].get("UpdateReplacePolicy") == "Retain", logical_id
    for kind in ("AWS::SQS::Queue", "AWS::Logs::LogGroup"):
        for logical_id, r in resources_of_type(cfn(), kind).items():
            assert r.get("DeletionPolicy") == "Delete", logical_id
    assert resources["IdempotencyTable"]["DeletionPolicy"] == "Delete"
