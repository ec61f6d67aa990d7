"""The README's deploy section, run line by line against an emulated stack with the template's outputs.

After `sam deploy` the table's name is CloudFormation's (`<stack>-Table-<id>`): a command falling
back to the local default (`chat-gateway`) writes the first key where no function looks, and no
client can call the API. The block below "Deploying" in the README is executed here as written
(its `gatewayctl` lines through `gatewayctl.cli.main`, its curl against the gateway app configured
as the deployed ChatFunction is), so that the README and the commands can't drift apart.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from typing import Any
from urllib.parse import urlparse

import boto3
import pytest
from fastapi.testclient import TestClient

from gatewayctl import envfile
from gatewayctl.cli import main
from gatewayctl.local.bootstrap import LOCAL_ENV
from gatewayctl.stack import describe
from tests.conftest import ROOT
from tests.infra.emulated_stack import create_stack

GATEWAYCTL = [".venv/bin/python", "-m", "gatewayctl"]


def deploy_block() -> list[str]:
    """The README's commands after `sam deploy`: the bash block of "Deploying" that reads outputs."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Deploying\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    [block] = [b for b in blocks if "gatewayctl outputs" in b]
    return block.replace("\\\n", " ").splitlines()


def samconfig_parameters() -> dict[str, str]:
    """What `sam deploy` (the default environment of samconfig.toml) gives the stack."""
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    overrides = config["default"]["deploy"]["parameters"]["parameter_overrides"]
    return dict(pair.split("=", 1) for pair in overrides.split())


class Shell:
    """Just enough of bash for the block: `A=b C=d`, `X=$(cmd)`, `$X` / `"$X"`, gatewayctl, curl."""

    def __init__(self, capsys: pytest.CaptureFixture[str], curl: Any) -> None:
        self.vars: dict[str, str] = {}
        self.capsys = capsys
        self.curl = curl
        self.ran: list[str] = []

    def expand(self, text: str) -> str:
        return re.sub(r"\$(\w+)", lambda m: self.vars[m.group(1)], text)

    def run(self, line: str) -> None:
        substituted = re.fullmatch(r"(\w+)=\$\((.*)\)\s*(#.*)?", line.strip())
        if substituted:
            self.vars[substituted.group(1)] = self.command(
                shlex.split(self.expand(substituted.group(2)))
            ).strip()
            return
        words = shlex.split(self.expand(line), comments=True)
        if words and all(re.fullmatch(r"\w+=\S*", w) for w in words):
            self.vars.update(w.split("=", 1) for w in words)
        elif words:
            print(self.command(words), end="")

    def command(self, words: list[str]) -> str:
        if words[:3] == GATEWAYCTL:
            self.ran.append(" ".join(words[3:5]))
            self.capsys.readouterr()
            code = main(words[3:])
            out, err = self.capsys.readouterr()
            assert code == 0, f"{' '.join(words)} -> {code}: {err}"
            return out
        if words[0] == "curl":
            self.ran.append("curl")
            return str(self.curl(words[1:]))
        raise AssertionError(f"the README's deploy block runs {words[0]!r}, which this test can't")


def test_readme_deploy_section_reaches_a_first_answer(
    aws: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from handler import aws as aws_clients
    from handler import wiring
    from handler.wiring import create_app

    monkeypatch.chdir(ROOT)  # the README's paths (config/demo.yaml) are the repository's
    answers: list[dict[str, Any]] = []

    def curl(args: list[str]) -> str:
        """The request, to the gateway app as the deployed ChatFunction runs it: the environment
        CloudFormation gives it (here: `gatewayctl env --stack`) in the stack's region."""
        headers, body, urls = {}, None, []
        words = iter(args)
        for word in words:
            if word == "-H":
                name, value = next(words).split(":", 1)
                headers[name.strip()] = value.strip()
            elif word == "-d":
                body = next(words)
            elif not word.startswith("-"):
                urls.append(word)
        [url] = urls
        stack = describe(shell.vars["STACK"], shell.vars["REGION"])
        assert url == stack.output("ChatCompletionsUrl")
        deployed = envfile.for_stack(stack, envfile.load_template())["ChatFunction"]
        for name, value in {
            **deployed,
            "AWS_REGION": stack.region,
            "AWS_DEFAULT_REGION": stack.region,
        }.items():
            monkeypatch.setenv(name, value)
        aws_clients.reset_clients()
        wiring.reset()
        path = urlparse(url).path.removeprefix(f"/{stack.parameters['Stage']}")  # API Gateway's stage
        with TestClient(create_app(), raise_server_exceptions=False) as client:
            response = client.post(path, headers=headers, content=body)
        assert response.status_code == 200, response.text
        answers.append(response.json())
        return response.text

    shell = Shell(capsys, curl)
    lines = deploy_block()
    # The stack that `sam deploy` made, with the name and region the README's first line gives.
    shell.run(lines[0])
    assert {"STACK", "REGION"} <= set(shell.vars), lines[0]
    outputs = create_stack(shell.vars["STACK"], shell.vars["REGION"], samconfig_parameters())
    assert outputs["TableName"] != aws["TABLE_NAME"]
    for line in lines[1:]:
        shell.run(line)

    assert shell.ran == [
        "outputs --stack",
        "config push",
        "keys create",
        "outputs ChatCompletionsUrl",
        "curl",
    ]
    [answer] = answers
    assert answer["choices"][0]["message"]["content"]
    ddb = boto3.client("dynamodb", region_name=shell.vars["REGION"])
    keys = [i for i in ddb.scan(TableName=outputs["TableName"])["Items"] if i["sk"]["S"] == "APIKEY"]
    assert len(keys) == 1, "the first key is in the stack's table"
    local = boto3.client("dynamodb", region_name=LOCAL_ENV["AWS_REGION"])
    default = local.scan(TableName=aws["TABLE_NAME"])["Items"]
    assert not [i for i in default if i["sk"]["S"] == "APIKEY"], "none in the local default table"
    assert shell.vars["KEY"] and shell.vars["KEY"] not in json.dumps(keys), "only its hash is stored"


@pytest.mark.unit
def test_every_command_takes_the_stack(aws: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    create_stack("cg-cli", "eu-west-1")
    assert main(["keys", "list", "--stack", "cg-cli", "--region", "eu-west-1"]) == 0
    assert main(["keys", "revoke", "nope", "--stack", "cg-cli", "--region", "eu-west-1"]) == 1
    assert "no key 'nope' in table cg-cli-Table-" in capsys.readouterr().err
    assert main(["outputs", "TableName", "--stack", "cg-cli", "--region", "eu-west-1"]) == 0
    assert capsys.readouterr().out.startswith("cg-cli-Table-")
    assert main(["outputs", "--stack", "cg-cli", "--region", "eu-west-1"]) == 0
    listed = dict(line.split("\t") for line in capsys.readouterr().out.splitlines())
    assert {"ApiUrl", "ChatCompletionsUrl", "TableName", "BucketName", "ConfigPrefix"} <= set(listed)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["keys", "list", "--stack", "absent", "--region", "eu-west-1"], "no stack 'absent' in eu-west-1"),
        (
            ["outputs", "NoSuchOutput", "--stack", "cg-cli", "--region", "eu-west-1"],
            "has no output NoSuchOutput",
        ),
        (["config", "push", "config/demo.yaml", "--stack", "cg-cli"], "no stack 'cg-cli' in us-east-1"),
    ],
)
def test_a_stack_that_cannot_be_used_is_named(
    aws: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    says: str,
) -> None:
    monkeypatch.chdir(ROOT)
    create_stack("cg-cli", "eu-west-1")
    assert main(argv) == 1
    assert says in capsys.readouterr().err


@pytest.mark.unit
def test_table_and_stack_are_one_or_the_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["keys", "list", "--table", "t", "--stack", "s"])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
