"""The functions' IAM lets them call Bedrock through every kind of inference profile.

A cross-region inference profile sends each call to a foundation model in one of its destination
regions, and Bedrock checks the caller's permission on that region's foundation-model ARN as well
as on the profile; a global profile's destination ARN has no region at all
(`arn:aws:bedrock:::foundation-model/...`). An application inference profile is an ARN in the
account. IAM's `*` matches any run of characters, the empty one included, as `fnmatch` does.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest

from tests.infra.test_template import resources_for

MODEL = "anthropic.claude-sonnet-4-5-20250929-v1:0"
ACCOUNT = "123456789012"
DESTINATIONS = {
    "us": ["us-east-1", "us-east-2", "us-west-2"],
    "eu": ["eu-central-1", "eu-west-1", "eu-west-3", "eu-north-1"],
    "apac": ["ap-northeast-1", "ap-southeast-1", "ap-southeast-2", "ap-south-1"],
    "global": [""],
}
REQUIRED = [
    *(f"arn:aws:bedrock:{region}::foundation-model/{MODEL}" for rs in DESTINATIONS.values() for region in rs),
    *(f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/{geo}.{MODEL}" for geo in DESTINATIONS),
    f"arn:aws:bedrock:eu-west-1:{ACCOUNT}:application-inference-profile/a1b2c3d4e5f6",
]


def _allowed(function: str, action: str, arn: str) -> bool:
    patterns = [
        r.replace("${AWS::Partition}", "aws").replace("${AWS::AccountId}", ACCOUNT)
        for r in resources_for(function, action)
    ]
    return any(fnmatchcase(arn, p) for p in patterns)


@pytest.mark.parametrize("function", ["ApiFunction", "ChatFunction", "BatchFunction"])
def test_every_destination_of_every_profile_is_allowed(function: str) -> None:
    for action in ("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"):
        missing = [arn for arn in REQUIRED if not _allowed(function, action, arn)]
        assert missing == [], (function, action)
