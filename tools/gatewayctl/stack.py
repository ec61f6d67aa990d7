"""A deployed stack's names, read from its CloudFormation outputs and parameters.

CloudFormation generates the table's name (and the queues'), so a command that acts on a deployed
stack must not guess them from the gateway's defaults: `--stack NAME [--region R]` looks them up
here, in the outputs that template.yaml declares (`TableName`, `ConfigPrefix`, `BucketName`, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# A stack in one of these states has no resources to use (yet, or any more): its outputs are
# missing or name deleted resources.
UNUSABLE_STATUSES = frozenset(
    {
        "CREATE_IN_PROGRESS",
        "CREATE_FAILED",
        "ROLLBACK_IN_PROGRESS",
        "ROLLBACK_FAILED",
        "ROLLBACK_COMPLETE",
        "DELETE_IN_PROGRESS",
        "DELETE_FAILED",
        "DELETE_COMPLETE",
        "REVIEW_IN_PROGRESS",
    }
)


class StackError(Exception):
    """The stack can't be read or lacks what the command needs; the message says what to do."""


@dataclass(frozen=True)
class Stack:
    name: str
    region: str
    account: str
    partition: str
    status: str
    outputs: Mapping[str, str]
    parameters: Mapping[str, str]

    def output(self, key: str) -> str:
        """The value of output `key`; a stack deployed from an older template may lack it."""
        try:
            return self.outputs[key]
        except KeyError:
            have = ", ".join(sorted(self.outputs)) or "none"
            raise StackError(
                f"stack {self.name} ({self.region}) has no output {key} (it has: {have}); "
                "deploy it again from this template (sam deploy)"
            ) from None

    @property
    def url_suffix(self) -> str:
        return "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com"


def describe(name: str, region: str | None = None, cloudformation: Any = None) -> Stack:
    """Read stack `name` in `region` (default: the environment's region) or say why not."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    try:
        cfn = cloudformation or boto3.client("cloudformation", region_name=region)
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except NoRegionError:
        raise StackError("no region: pass --region (the stack's region) or set AWS_DEFAULT_REGION") from None
    except NoCredentialsError:
        raise StackError("no AWS credentials: set AWS_PROFILE or the AWS_ACCESS_KEY_ID variables") from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        where = region or cfn.meta.region_name
        if "does not exist" in str(error.get("Message", "")):
            raise StackError(
                f"no stack {name!r} in {where}: check the name and --region "
                "(the stack_name and region that sam deploy used, in samconfig.toml)"
            ) from None
        raise StackError(
            f"cannot read stack {name!r} in {where}: {error.get('Code')}: {error.get('Message')}"
        ) from None
    except BotoCoreError as exc:
        raise StackError(f"cannot read stack {name!r}: {exc}") from None
    [found] = stacks
    # arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<id>
    _, partition, _, stack_region, account, _ = found["StackId"].split(":", 5)
    status = found["StackStatus"]
    if status in UNUSABLE_STATUSES:
        raise StackError(
            f"stack {name} ({stack_region}) is {status}: it has nothing to use; "
            "see its events (aws cloudformation describe-stack-events) and deploy it again"
        )
    return Stack(
        name=found["StackName"],
        region=stack_region,
        account=account,
        partition=partition,
        status=status,
        outputs={o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])},
        parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in found.get("Parameters", [])},
    )
