"""Issue #11 D15: what the template says limits traffic is what limits it.

No method requires an API Gateway key (clients send `Authorization: Bearer`), so a usage plan and
its generated key would meter nothing: API Gateway applies a usage plan's throttle and quota only to
requests that present a key of the plan
(https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-api-usage-plans.html).
There is none; stage throttling and reserved concurrency are what limit traffic, and the docs say so.
"""

from __future__ import annotations

from pathlib import Path

from tests.infra.test_template import cfn, props

ROOT = Path(__file__).resolve().parents[2]
METERING = ("AWS::ApiGateway::UsagePlan", "AWS::ApiGateway::UsagePlanKey", "AWS::ApiGateway::ApiKey")


def test_no_usage_plan_or_api_key_that_would_meter_nothing() -> None:
    resources = cfn()["Resources"]
    assert [name for name, r in resources.items() if r["Type"] in METERING] == []
    assert "ApiKeyQuotaPerDay" not in cfn().get("Parameters", {})
    for name, r in resources.items():
        if r["Type"] == "AWS::ApiGateway::RestApi":
            body = r["Properties"].get("Body", {})
            assert "api_key" not in str(body.get("components", body.get("securityDefinitions", {}))), name


def test_stage_throttling_applies_to_every_method() -> None:
    (stage,) = [n for n, r in cfn()["Resources"].items() if r["Type"] == "AWS::ApiGateway::Stage"]
    settings = props(stage)["MethodSettings"]
    assert any(
        s["ResourcePath"] == "/*" and s["HttpMethod"] == "*" and "ThrottlingRateLimit" in s for s in settings
    )


def test_the_docs_do_not_claim_a_usage_plan_throttles() -> None:
    for path in ("README.md", "docs/security.md", "docs/operations.md", "template.yaml"):
        text = (ROOT / path).read_text(encoding="utf-8").lower()
        assert "usage plan throttl" not in text, path
        assert "usage plan's throttle" not in text and "ApiKeyQuotaPerDay".lower() not in text, path
    security = (ROOT / "docs/security.md").read_text(encoding="utf-8")
    assert "stage throttling" in security.lower() and "reserved concurrency" in security.lower()
