"""A stack of template.yaml in moto, as far as moto can hold one.

The SAM template itself won't deploy in moto (no SAM transform, no Lambda code), so the stack made
here is a small CloudFormation template built from template.yaml: the same Parameters, and an
output for every output template.yaml declares under those parameters, with the same key. Outputs
that name a table, bucket, queue, topic or log group name a real one that this stack creates, with
the name CloudFormation generates (`<stack>-Table-<id>`, not the `chat-gateway` default); the rest
(the API's URL, the dashboard's) are placeholders where they name resources moto can't create.
Read from template.yaml on every run, so that a new or renamed output reaches the tests.
"""

from __future__ import annotations

import json
import re
from typing import Any

import boto3

from tests.infra.sam import load_template, resolve

# Resources an output may name that the emulated stack creates for real, with the properties kept.
CREATED = {
    "AWS::DynamoDB::Table": ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode"),
    "AWS::S3::Bucket": ("BucketName",),
    "AWS::SQS::Queue": (),
    "AWS::SNS::Topic": (),
    "AWS::Logs::LogGroup": (),
}


def stack_template() -> dict[str, Any]:
    """template.yaml's parameters and outputs (conditions taken at the parameters' defaults)."""
    template = resolve(load_template())
    resources = template["Resources"]
    parameters = {
        name: {"Type": "String", "Default": str(p.get("Default", ""))}
        for name, p in template["Parameters"].items()
    }
    created: dict[str, Any] = {}

    def create(logical_id: str) -> bool:
        resource = resources[logical_id]
        kept = CREATED.get(resource["Type"])
        if kept is None:
            return False
        properties = {k: v for k, v in resource.get("Properties", {}).items() if k in kept}
        created[logical_id] = {"Type": resource["Type"], "Properties": properties}
        return True

    def value(node: Any) -> Any:
        if isinstance(node, dict) and set(node) == {"Ref"} and node["Ref"] in resources:
            return node if create(node["Ref"]) else f"{node['Ref']}-placeholder"
        if isinstance(node, dict) and set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):

            def one(match: re.Match[str]) -> str:
                name = match.group(1).split(".", 1)[0]
                if name in resources and not create(name):
                    return f"{name.lower()}0test"
                return match.group(0)

            return {"Fn::Sub": re.sub(r"\$\{([^}!]*)\}", one, node["Fn::Sub"])}
        return node

    outputs = {key: {"Value": value(output["Value"])} for key, output in template["Outputs"].items()}
    return {"Parameters": parameters, "Resources": created, "Outputs": outputs}


def create_stack(name: str, region: str, parameters: dict[str, str] | None = None) -> dict[str, str]:
    """Create the stack (inside moto's mock) and return its outputs."""
    cfn = boto3.client("cloudformation", region_name=region)
    cfn.create_stack(
        StackName=name,
        TemplateBody=json.dumps(stack_template()),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()],
    )
    [stack] = cfn.describe_stacks(StackName=name)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
