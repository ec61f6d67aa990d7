"""System prompt templates: arguments are data, abusive templates are refused, rendering is bounded."""

from __future__ import annotations

from typing import Any

import boto3
import orjson
import pytest
from fastapi.testclient import TestClient

from tests.conftest import put_project

CHAT = "/api/v1/chat/completions"

INJECTIONS = [
    "{{ ''.__class__.__mro__ }}",
    "{{ 7*7 }}",
    "{% for i in range(10**9) %}x{% endfor %}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{% raw %}{{ x }}{% endraw %}",
    "${7*7} #{7*7} <%= 7*7 %>",
]


def project(template: str, name: str = "tpl") -> dict[str, Any]:
    return {
        "project": name,
        "default_model": "echo",
        "system_prompt": {"template": template},
        "models": {"echo": {"provider": "echo"}},
    }


def chat(client: TestClient, model: str, args: dict[str, Any] | None = None) -> Any:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    if args is not None:
        body["system_prompt_args"] = args
    return client.post(CHAT, json=body)


@pytest.fixture
def warm(module_client: TestClient) -> TestClient:
    """A client whose app has served once."""
    client = module_client
    assert (
        client.post(CHAT, json={"model": "demo", "messages": [{"role": "user", "content": "hi"}]}).status_code
        == 200
    )
    return client


def stored_system_prompt(client: TestClient, response: Any) -> str:
    cid = response.json()["choices"][0]["completion_id"]
    record = client.get(f"/api/v1/completions/{cid}").json()
    return str(record["system_prompt"])


@pytest.mark.parametrize("payload", INJECTIONS)
def test_injection_payloads_in_arguments_stay_literal(module_client: TestClient, payload: str) -> None:
    put_project(project("You are {{ persona }}. Context: {% for d in docs %}[{{ d }}]{% endfor %}"))
    r = chat(module_client, "tpl", {"persona": payload, "docs": [payload, {"k": payload}]})
    assert r.status_code == 200, r.text
    expected = f"You are {payload}. Context: [{payload}][{ {'k': payload} }]"
    assert stored_system_prompt(module_client, r) == expected


@pytest.mark.parametrize(
    ("template", "args", "reason"),
    [
        ("{% for a in xs %}{% for b in xs %}{% endfor %}{% endfor %}", {"xs": list(range(5000))}, "steps"),
        ("{{ s * n }}", {"s": "ab", "n": 10**9}, "value over"),
        ("{{ 10 ** n }}", {"n": 10**7}, "integer too large"),
        ("{{ xs|join(sep) }}", {"xs": list(range(50_000)), "sep": "-" * 100}, "join"),
        ("{{ s|replace('', t) }}", {"s": "x" * 2000, "t": "y" * 2000}, "replace"),
        ("{% for i in range(n) %}.{% endfor %}", {"n": 10**8}, "range"),
        (
            "{% for i in xs %}{{ s }}{% endfor %}",
            {"xs": list(range(1000)), "s": "z" * 1000},
            "exceeds 100000",
        ),
        (
            "{% set ns = namespace(s=s) %}{% for i in xs %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
            {"s": "ab", "xs": list(range(64))},
            "value over",
        ),
    ],
)
def test_argument_driven_blowups_are_a_bounded_400(
    warm: TestClient, template: str, args: dict[str, Any], reason: str
) -> None:
    put_project(project(template))
    r = chat(warm, "tpl", args)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == "system_prompt_args"
    assert reason in error["message"]


@pytest.mark.parametrize(
    ("template", "refusal"),
    [
        ("{{ persona.__class__ }}", "private attribute '__class__'"),
        ("{{ persona['__globals__'] }}", "private item '__globals__'"),
        ("{{ persona|attr('__class__') }}", "No filter named 'attr'"),
        ("{% macro f() %}{{ f() }}{{ f() }}{% endmacro %}{{ f() }}", "macros"),
        ("{% for x in xs recursive %}{{ loop(x) }}{% endfor %}", "recursive loop"),
        ("{% set big %}{% for i in range(9999) %}x{% endfor %}{% endset %}{{ big }}", "block assignments"),
        ("{% include 'secrets.txt' %}", "include"),
        ("{{ 'x'|center(10**9) }}", "No filter named 'center'"),
        ("{{ _gw_iter }}", "private name"),
        ("{{ unclosed", "does not compile"),
    ],
)
def test_abusive_templates_are_refused_before_anything_runs(
    warm: TestClient, template: str, refusal: str
) -> None:
    from pydantic import ValidationError

    from handler.config.models import ProjectConfig

    with pytest.raises(ValidationError) as refused:  # `config validate` / `config push` refuse it
        ProjectConfig.model_validate(project(template))
    assert "system_prompt.template" in str(refused.value).replace("\n", ".").replace(" ", "")
    assert refusal in str(refused.value)

    # Written to SSM behind the command's back: still never rendered, and a bounded error.
    ssm = boto3.client("ssm")
    base = "/chat-gateway/projects/raw"
    ssm.put_parameter(
        Name=f"{base}/project",
        Value=orjson.dumps({"default_model": "echo"}).decode(),
        Type="String",
        Overwrite=True,
    )
    ssm.put_parameter(Name=f"{base}/models/echo", Value='{"provider": "echo"}', Type="String", Overwrite=True)
    ssm.put_parameter(
        Name=f"{base}/system_prompt",
        Value=orjson.dumps({"template": template}).decode(),
        Type="String",
        Overwrite=True,
    )
    r = chat(warm, "raw", {"persona": "x", "xs": []})
    assert r.status_code == 500, r.text
    assert r.json()["error"]["code"] == "invalid_project_config"


def test_string_methods_are_whitelisted(module_client: TestClient) -> None:
    put_project(project("{{ s.upper() }}|{{ s.split(',')|join('+') }}|{{ d.get('k') }}"))
    r = chat(module_client, "tpl", {"s": "a,b", "d": {"k": "v"}})
    assert r.status_code == 200
    assert stored_system_prompt(module_client, r) == "A,B|a+b|v"
    refused = [
        "{{ s.format(1) }}",
        "{{ s.center(999999999) }}",
        "{{ '%9999999d' % 1 }}",
        "{{ (1).to_bytes(10**9, 'big') }}",
    ]
    for i, template in enumerate(refused):
        put_project(project(template, name=f"tpl{i}"))  # a new project: config is cached per project
        r = chat(module_client, f"tpl{i}", {"s": "{:>999999999}"})
        assert r.status_code == 400, (template, r.text)
        assert r.json()["error"]["param"] == "system_prompt_args"
