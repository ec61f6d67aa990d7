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
    assert p["Qualifier"] == "live"  # the alias S3 invokes (AutoPublishAlias)
    assert p["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["BatchInputFailureQueue", "Arn"]
    }
    assert p["MaximumRetryAttempts"] == 2
    queue = props("BatchInputFailureQueue")
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 1209600
    assert "BatchInputFailureQueueUrl" in cfn()["Outputs"]


# ------------------------------------------------------------------------------------------------
# The metrics the code emits (read from the code, so that renaming one there fails here)
# ------------------------------------------------------------------------------------------------
NAMESPACE = "ChatGateway"
SCHEMA = re.compile(r"\{([^{}]*)\}")
QUOTED = re.compile(r'(\w+)="([^"]*)"')


def emitted() -> dict[str, Any]:
    """One completion's EMF document, as `record_completion` writes it: namespace, metric names,
    dimension sets and the dimension values that do not vary (service)."""
    import contextlib
    import io
    import os

    from handler.observability import record_completion

    out = io.StringIO()
    saved = {
        k: os.environ.pop(k) for k in ("POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_DEV") if k in os.environ
    }
    try:
        with contextlib.redirect_stdout(out):
            record_completion(
                "p", "m", "completed", 1.0, 2.0, prompt_tokens=1, completion_tokens=1, cost_usd=0.25
            )
    finally:
        os.environ.update(saved)
    [document] = [json.loads(line) for line in out.getvalue().splitlines()]
    [directive] = document["_aws"]["CloudWatchMetrics"]
    return {
        "namespace": directive["Namespace"],
        "metrics": {m["Name"] for m in directive["Metrics"]},
        "dimension_sets": [frozenset(d) for d in directive["Dimensions"]],
        "service": document["service"],
    }


def statuses() -> set[str]:
    from typing import get_args

    from handler.store.records import Status

    return set(get_args(Status))


def test_the_code_emits_what_this_module_expects() -> None:
    code = emitted()
    assert code["namespace"] == NAMESPACE
    assert frozenset({"service"}) in code["dimension_sets"]
    assert {
        "Completions",
        "Latency",
        "TimeToFirstToken",
        "PromptTokens",
        "CompletionTokens",
        "CostUSD",
    } == code["metrics"]


# ------------------------------------------------------------------------------------------------
# Dashboard
# ------------------------------------------------------------------------------------------------
def dashboard() -> dict[str, Any]:
    """The dashboard body as CloudWatch gets it: `${Name}` of a Number parameter becomes a number,
    `${!...}` the literal `${...}`, any other `${...}` its own name (a placeholder)."""
    from tests.infra.sam import load_template

    [board] = resources_of_type(cfn(), "AWS::CloudWatch::Dashboard").values()
    body = board["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(body, str)
    parameters = load_template()["Parameters"]

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        if parameters.get(name, {}).get("Type") == "Number":
            return str(parameters[name]["Default"])
        return name

    return json.loads(re.sub(r"\$\{([^}]+)\}", fill, body))  # type: ignore[no-any-return]


def metric_widgets() -> list[dict[str, Any]]:
    return [w["properties"] for w in dashboard()["widgets"] if w["type"] == "metric"]


def dashboard_metrics() -> list[tuple[str, str, dict[str, str], dict[str, Any]]]:
    """Every metric the widgets name directly: (namespace, name, dimensions, options). A "." repeats
    the entry above it, as CloudWatch reads it."""
    found = []
    for widget in metric_widgets():
        previous: list[Any] = []
        for entry in widget["metrics"]:
            if isinstance(entry[0], dict):
                continue
            options = entry[-1] if isinstance(entry[-1], dict) else {}
            fields = [
                previous[i] if v == "." and i < len(previous) else v
                for i, v in enumerate(entry)
                if not isinstance(v, dict)
            ]
            previous = fields
            namespace, name, *pairs = fields
            found.append((namespace, name, dict(zip(pairs[::2], pairs[1::2], strict=True)), options))
    return found


def dashboard_expressions() -> list[str]:
    return [e[0]["expression"] for w in metric_widgets() for e in w["metrics"] if isinstance(e[0], dict)]


def searched(expression: str) -> list[tuple[frozenset[str], dict[str, str]]]:
    """The SEARCH terms of an expression that name the gateway's namespace: (schema dimensions,
    the name="value" filters, MetricName included)."""
    found = []
    for query in re.findall(r"SEARCH\('([^']*)'", expression):
        [schema] = SCHEMA.findall(query)
        namespace, *dimensions = [part.strip() for part in schema.split(",")]
        if namespace == NAMESPACE:
            found.append((frozenset(dimensions), dict(QUOTED.findall(query))))
    return found


def test_every_gateway_metric_on_the_dashboard_is_one_the_code_emits() -> None:
    code = emitted()
    named = []
    for namespace, name, dimensions, _ in dashboard_metrics():
        if namespace == NAMESPACE:
            assert name in code["metrics"], name
            assert frozenset(dimensions) in code["dimension_sets"], dimensions
            assert dimensions.get("service", code["service"]) == code["service"]
            named.append(name)
    for expression in dashboard_expressions():
        terms = searched(expression)
        # An expression on the gateway's namespace in a form this test can't read would go unchecked.
        assert terms or NAMESPACE not in expression, expression
        for dimensions, filters in terms:
            assert dimensions in code["dimension_sets"], expression
            assert filters["MetricName"] in code["metrics"], expression
            assert filters.get("status", "completed") in statuses(), expression
            assert filters.get("service", code["service"]) == code["service"], expression
            named.append(filters["MetricName"])
    assert set(named) == code["metrics"], "every metric the code emits is on the dashboard"


def test_dashboard_shows_percentiles_by_project_and_model() -> None:
    wanted = {(metric, p) for metric in ("TimeToFirstToken", "Latency") for p in ("p50", "p90", "p99")}
    found = set()
    for expression in dashboard_expressions():
        for dimensions, filters in searched(expression):
            stat = re.search(r"',\s*'([^']+)'", expression)
            assert stat is not None
            if {"project", "model"} <= dimensions and stat.group(1) in {"p50", "p90", "p99"}:
                assert filters.get("status") == "completed"  # a percentile is over one status
                found.add((filters["MetricName"], stat.group(1)))
    assert wanted <= found


def test_dashboard_covers_the_api_the_functions_and_the_queues() -> None:
    from tests.infra.test_template import FUNCTIONS

    shown = {(ns, name, tuple(sorted(d.items()))) for ns, name, d, _ in dashboard_metrics()}
    api = (("ApiName", "AWS::StackName"), ("Stage", "Stage"))
    for name in ("Count", "4XXError", "5XXError", "Latency", "IntegrationLatency"):
        assert ("AWS/ApiGateway", name, api) in shown, name
    for function in FUNCTIONS:
        for name in ("Duration", "Errors", "Throttles", "ConcurrentExecutions"):
            assert ("AWS/Lambda", name, (("FunctionName", function),)) in shown, (function, name)
    queues = set(resources_of_type(cfn(), "AWS::SQS::Queue"))
    for queue in queues:
        key = ("AWS/SQS", "ApproximateNumberOfMessagesVisible", (("QueueName", f"{queue}.QueueName"),))
        assert key in shown, queue
    assert (
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        (("QueueName", "StoreRetryQueue.QueueName"),),
    ) in shown
    # Every status the code records has its line.
    lines = {
        f.get("status")
        for e in dashboard_expressions()
        for _, f in searched(e)
        if f["MetricName"] == "Completions"
    }
    assert lines == statuses()


def test_dashboard_shows_cost_by_project() -> None:
    """Issue 15: what each team spent, from the `CostUSD` series the code writes per project."""
    found = [
        filters
        for expression in dashboard_expressions()
        for dimensions, filters in searched(expression)
        if filters["MetricName"] == "CostUSD" and "project" in dimensions
    ]
    assert found


def test_dashboard_lists_every_alarm() -> None:
    [panel] = [w["properties"] for w in dashboard()["widgets"] if w["type"] == "alarm"]
    assert set(panel["alarms"]) == {f"{a}.Arn" for a in resources_of_type(cfn(), "AWS::CloudWatch::Alarm")}


def test_the_api_name_the_metrics_use_is_the_rest_apis() -> None:
    """API Gateway's metrics are keyed by the RestApi's name, which SAM takes from the stack's."""
    api = props("Api")
    assert api.get("Name", api["Body"]["info"]["title"]) == {"Ref": "AWS::StackName"}


# ------------------------------------------------------------------------------------------------
# Alarms
# ------------------------------------------------------------------------------------------------
def alarms() -> dict[str, dict[str, Any]]:
    return {lid: r["Properties"] for lid, r in resources_of_type(cfn(), "AWS::CloudWatch::Alarm").items()}


def alarm_metrics(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics an alarm reads: its own, or those of its metric math."""
    if "MetricName" in alarm:
        return [
            {
                "Namespace": alarm["Namespace"],
                "MetricName": alarm["MetricName"],
                "Dimensions": alarm.get("Dimensions", []),
            }
        ]
    return [m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m]


def test_every_gateway_metric_an_alarm_reads_is_one_the_code_emits() -> None:
    code = emitted()
    read = 0
    for logical_id, alarm in alarms().items():
        for metric in alarm_metrics(alarm):
            if metric["Namespace"] != NAMESPACE:
                continue
            dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
            assert metric["MetricName"] in code["metrics"], logical_id
            assert frozenset(dimensions) in code["dimension_sets"], logical_id
            assert dimensions == {"service": code["service"]}, logical_id  # an alarm reads one series
            read += 1
        for query in (m.get("Expression", "") for m in alarm.get("Metrics", [])):
            assert "SEARCH" not in query and NAMESPACE not in query, logical_id  # alarms can't search
    assert read >= 1


def test_every_alarm_notifies_the_topic() -> None:
    for logical_id, alarm in alarms().items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], logical_id
        assert alarm["OKActions"] == [{"Ref": "AlarmTopic"}], logical_id
        assert alarm["TreatMissingData"] == "notBreaching", logical_id
        assert "AlarmName" not in alarm, logical_id  # generated: stacks don't collide


def test_alarm_email_is_optional() -> None:
    assert not resources_of_type(cfn(), "AWS::SNS::Subscription")
    template = deployed_with(AlarmEmail="ops@example.com")
    [subscription] = resources_of_type(template, "AWS::SNS::Subscription").values()
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": "AlarmTopic"},
        "Protocol": "email",
        "Endpoint": "ops@example.com",
    }


def watched(namespace: str, name: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        for logical_id, alarm in alarms().items()
        for metric in alarm_metrics(alarm)
        if (metric["Namespace"], metric["MetricName"]) == (namespace, name)
    }


def test_alarms_cover_what_the_issue_asks() -> None:
    from tests.infra.test_template import FUNCTIONS

    [(rate_id, api)] = watched("AWS/ApiGateway", "5XXError").items()
    assert api == {"ApiName": {"Ref": "AWS::StackName"}, "Stage": {"Ref": "Stage"}}
    rate = alarms()[rate_id]
    assert rate["Threshold"] == {"Ref": "Api5xxRatePercent"}
    assert [m["Expression"] for m in rate["Metrics"] if m.get("ReturnData")] == [
        "IF(requests >= 10, 100 * errors / requests, 0)"
    ]
    for name in ("Errors", "Throttles"):
        assert sorted(d["FunctionName"]["Ref"] for d in watched("AWS/Lambda", name).values()) == sorted(
            FUNCTIONS
        )
    dead = {
        d["QueueName"]["Fn::GetAtt"][0]
        for d in watched("AWS/SQS", "ApproximateNumberOfMessagesVisible").values()
    }
    assert dead == {"BatchDeadLetterQueue", "StoreRetryDeadLetterQueue", "BatchInputFailureQueue"}
    for logical_id in watched("AWS/SQS", "ApproximateNumberOfMessagesVisible"):
        assert alarms()[logical_id]["Threshold"] == 0  # any message at all
    [(age_id, queue)] = watched("AWS/SQS", "ApproximateAgeOfOldestMessage").items()
    assert queue == {"QueueName": {"Fn::GetAtt": ["StoreRetryQueue", "QueueName"]}}
    assert alarms()[age_id]["Threshold"] == {"Ref": "StoreRetryMaxAgeSeconds"}
    [ttft_id] = watched(NAMESPACE, "TimeToFirstToken")
    assert alarms()[ttft_id]["ExtendedStatistic"] == "p90"
    assert alarms()[ttft_id]["Threshold"] == {"Ref": "TtftP90ThresholdMs"}


# ------------------------------------------------------------------------------------------------
# Docs
# ------------------------------------------------------------------------------------------------
def test_operations_doc_lists_every_parameter_with_its_default() -> None:
    from tests.infra.sam import ROOT, load_template

    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    text = text.split("## Parameters", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|", text, flags=re.M))
    parameters = load_template()["Parameters"]
    assert set(rows) == set(parameters)
    for name, parameter in parameters.items():
        default = str(parameter.get("Default", ""))
        assert rows[name].strip() == (f"`{default}`" if default else "empty"), name


def test_readme_states_the_sam_cli_whose_translator_knows_the_streamed_route() -> None:
    """The README's minimum is the translator this repository's checks pass with, or older."""
    from importlib.metadata import version

    from tests.infra.sam import ROOT

    deploying = (ROOT / "README.md").read_text(encoding="utf-8").split("## Deploying", 1)[1]
    minimum = re.search(r"aws-sam-translator\s+(\d+)\.(\d+)\.\d+", deploying)
    assert minimum is not None and "SAM CLI 1.158.0 or later" in deploying
    installed = tuple(int(part) for part in version("aws-sam-translator").split(".")[:2])
    assert (int(minimum.group(1)), int(minimum.group(2))) == (1, 109) <= installed
    for name in ("ExistingTableName", "ExistingBucketName", "BatchInputNotificationCommand"):
        assert name in deploying, name
