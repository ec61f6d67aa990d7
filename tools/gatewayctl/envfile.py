"""The env file of `sam local invoke --env-vars`, written from template.yaml: every variable the
template sets for each function (Globals included), and nothing else.

`sam local invoke` gives a function only the variables its template declares; the file can set
their values but not add names (SAM CLI, samcli/local/lambdafn/env_vars.py: `resolve()` walks the
template's variables only). So the file is keyed by function and holds exactly those names, valued

- `--stack NAME`: as CloudFormation set them on the deployed functions, from the stack's outputs
  (a variable whose template value is an output's, or refers to a resource an output names) and
  parameters (the rest: `!Ref LogLevel`, conditions, `!Sub` with the pseudo parameters);
- `--local`: for the local emulation (`make dev`, moto on DEFAULT_AWS_PORT) as seen from inside
  sam's container, through `host.docker.internal`, with the emulation's names and dev auth.

Credentials are not variables a template may declare (Lambda reserves them): sam passes its own,
from the shell (`AWS_ACCESS_KEY_ID=local ... sam local invoke`, dummy ones for the emulation).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from gatewayctl.local.bootstrap import DEFAULT_AWS_PORT, LOCAL_ENV
from gatewayctl.stack import Stack

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"
FUNCTION_TYPE = "AWS::Serverless::Function"
# What a container reaches the host by: Docker Desktop names it; on Linux map it to the docker0
# bridge with `sam local invoke --add-host host.docker.internal:172.17.0.1`.
DOCKER_HOST = "host.docker.internal"
# moto's account, and the queues that gatewayctl.local.bootstrap.create_resources creates.
LOCAL_ACCOUNT = "123456789012"
LOCAL_QUEUES = {"BATCH_QUEUE_URL": "chat-gateway-batch", "STORE_RETRY_QUEUE_URL": "chat-gateway-store-retry"}

EnvFile = dict[str, dict[str, str]]


class EnvFileError(Exception):
    """A variable of the template can't be given a value; the message names it and what's missing."""


# ------------------------------------------------------------------------------------------------
# The template, intrinsic functions in their long form (`!Ref X` -> {"Ref": "X"})
# ------------------------------------------------------------------------------------------------
class _TemplateLoader(yaml.SafeLoader):
    pass


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_TemplateLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    if not path.is_file():
        raise EnvFileError(f"no template at {path}: pass --template PATH (the stack's template.yaml)")
    loaded: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"), Loader=_TemplateLoader)
    return loaded


def function_variables(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each function's variables as the template writes them: Globals, then the function's own."""
    shared = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    functions = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") == FUNCTION_TYPE:
            own = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
            functions[logical_id] = {**shared, **own}
    return functions


# ------------------------------------------------------------------------------------------------
# Values, the way CloudFormation computes them
# ------------------------------------------------------------------------------------------------
def _canonical(node: Any) -> str:
    return json.dumps(node, sort_keys=True)


class _Resolver:
    """Evaluates a variable's template value from parameter values, pseudo parameters and outputs.

    A resource's name or URL is known only through an output: an output whose Value is the same
    expression (`TableName` for `!If [CreateTable, !Ref Table, ...]`), or `!Ref X` / `!GetAtt X.Y`
    that an output's Value is exactly."""

    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, str],
        pseudo: Mapping[str, str],
        outputs: Mapping[str, str],
    ) -> None:
        declared = template.get("Parameters", {})
        self.parameters = {name: _text(p.get("Default", "")) for name, p in declared.items()} | dict(
            parameters
        )
        self.pseudo = pseudo
        self.conditions = template.get("Conditions", {})
        self.by_expression = {
            _canonical(output["Value"]): outputs[key]
            for key, output in template.get("Outputs", {}).items()
            if key in outputs and "Value" in output
        }

    def value(self, node: Any) -> str:
        known = self.by_expression.get(_canonical(node))
        if known is not None:
            return known
        if not isinstance(node, dict):
            if isinstance(node, list):
                raise EnvFileError(f"a list is not a variable's value: {node!r}")
            return _text(node)
        if len(node) == 1:
            [(fn, args)] = node.items()
            if fn == "Ref":
                return self._ref(args)
            if fn == "Fn::If":
                name, yes, no = args
                return self.value(yes if self._condition(name) else no)
            if fn == "Fn::Sub":
                return self._sub(args)
            if fn == "Fn::Join":
                separator, items = args
                return str(separator).join(self.value(item) for item in items)
        raise EnvFileError(f"nothing gives {_canonical(node)}")

    def _ref(self, name: str) -> str:
        if name in self.parameters:
            return self.parameters[name]
        if name in self.pseudo:
            return self.pseudo[name]
        known = self.by_expression.get(_canonical({"Ref": name}))
        if known is None:
            raise EnvFileError(f"nothing gives !Ref {name}")
        return known

    def _sub(self, args: Any) -> str:
        text, extra = (args, {}) if isinstance(args, str) else (args[0], args[1])

        def one(match: re.Match[str]) -> str:
            inner = match.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"
            if inner in extra:
                return self.value(extra[inner])
            if "." in inner and not inner.startswith("AWS::"):
                resource, attribute = inner.split(".", 1)
                return self.value({"Fn::GetAtt": [resource, attribute]})
            return self._ref(inner)

        return re.sub(r"\$\{([^}]*)\}", one, text)

    def _condition(self, name: str) -> bool:
        return self._truth(self.conditions[name])

    def _truth(self, node: Any) -> bool:
        [(fn, args)] = node.items()
        if fn == "Fn::Equals":
            return self.value(args[0]) == self.value(args[1])
        if fn == "Fn::Not":
            return not self._truth(args[0])
        if fn == "Fn::And":
            return all(self._truth(a) for a in args)
        if fn == "Fn::Or":
            return any(self._truth(a) for a in args)
        if fn == "Condition":
            return self._condition(args)
        raise EnvFileError(f"unknown condition function {fn}")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _resolve_all(
    template: Mapping[str, Any], resolver: _Resolver, fixed: Mapping[str, str], source: str
) -> EnvFile:
    env: EnvFile = {}
    for function, variables in function_variables(template).items():
        env[function] = {}
        for name, node in variables.items():
            if name in fixed:
                env[function][name] = fixed[name]
                continue
            try:
                env[function][name] = resolver.value(node)
            except EnvFileError as exc:
                raise EnvFileError(f"{function} {name}: {exc} ({source})") from None
    return env


def for_stack(stack: Stack, template: Mapping[str, Any]) -> EnvFile:
    """Every function's variables as the deployed stack has them."""
    pseudo = {
        "AWS::StackName": stack.name,
        "AWS::Region": stack.region,
        "AWS::AccountId": stack.account,
        "AWS::Partition": stack.partition,
        "AWS::URLSuffix": stack.url_suffix,
    }
    resolver = _Resolver(template, stack.parameters, pseudo, stack.outputs)
    source = f"stack {stack.name} in {stack.region}: add an output with that Value to template.yaml"
    return _resolve_all(template, resolver, {}, source)


def local_values(host: str = DOCKER_HOST, port: int = DEFAULT_AWS_PORT) -> dict[str, str]:
    """The emulation's names and endpoint, as a container on this machine reaches them."""
    endpoint = f"http://{host}:{port}"
    values = {name: value for name, value in LOCAL_ENV.items() if not name.startswith("AWS_")}
    values["AWS_ENDPOINT_URL"] = endpoint
    values["AUTH_MODE"] = "dev"  # as `make dev` and `make invoke`: the events send DEV_API_KEY
    for name, queue in LOCAL_QUEUES.items():
        values[name] = f"{endpoint}/{LOCAL_ACCOUNT}/{queue}"
    return values


def for_local(template: Mapping[str, Any], host: str = DOCKER_HOST, port: int = DEFAULT_AWS_PORT) -> EnvFile:
    """Every function's variables for the local emulation: its names where it has them, the
    template's defaults for the rest (literals, parameters)."""
    values = local_values(host, port)
    pseudo = {
        "AWS::StackName": "chat-gateway-local",
        "AWS::Region": LOCAL_ENV["AWS_REGION"],
        "AWS::AccountId": LOCAL_ACCOUNT,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
    }
    resolver = _Resolver(template, {}, pseudo, {})
    return _resolve_all(template, resolver, values, "the local emulation: add it to envfile.local_values")


def render(env: EnvFile) -> str:
    return json.dumps(env, indent=2) + "\n"
