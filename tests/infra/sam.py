"""Load `template.yaml` and run the SAM transform on it offline.

`sam validate` needs the SAM CLI and `cfn-lint` (1.x) no longer runs samtranslator itself, so the
tests translate the template in-process, the way CloudFormation would on deploy: no AWS account,
no credentials, no network. Local code paths (`CodeUri: src/`, `ContentUri: layers/deps`) become
placeholder S3 URIs, as `sam package` would make them.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
REGION = "us-east-1"

# Properties that `sam package` rewrites from a local path to an S3 URI, by resource type.
_PACKAGED_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}


def template_text() -> str:
    return TEMPLATE_PATH.read_text(encoding="utf-8")


@cache
def _load() -> dict[str, Any]:
    from cfnlint.decode.cfn_yaml import loads  # type: ignore[import-untyped]

    # cfn-lint's loader understands the short intrinsic tags (!Ref, !Sub, !GetAtt ...) and turns
    # them into their long JSON form, which is what samtranslator expects.
    loaded = loads(template_text(), str(TEMPLATE_PATH))
    # Plain dicts and strings (cfn-lint's node subclasses carry line marks we do not need).
    return json.loads(json.dumps(loaded))  # type: ignore[no-any-return]


def load_template() -> dict[str, Any]:
    """The SAM template as written, intrinsic functions in long form. A fresh copy each call."""
    return copy.deepcopy(_load())


def _packaged(template: dict[str, Any]) -> dict[str, Any]:
    packaged = copy.deepcopy(template)
    globals_function = packaged.get("Globals", {}).get("Function", {})
    if isinstance(globals_function.get("CodeUri"), str):
        globals_function["CodeUri"] = "s3://placeholder-bucket/code.zip"
    for logical_id, resource in packaged.get("Resources", {}).items():
        prop = _PACKAGED_PROPERTIES.get(resource.get("Type", ""))
        properties = resource.get("Properties", {})
        if prop and isinstance(properties.get(prop), str) and not properties[prop].startswith("s3://"):
            properties[prop] = f"s3://placeholder-bucket/{logical_id}.zip"
    return packaged


def translate(template: dict[str, Any]) -> dict[str, Any]:
    """Run the SAM transform on `template` (a SAM template in long form) and return plain JSON data."""
    from boto3.session import Session
    from samtranslator.parser.parser import Parser  # type: ignore[import-untyped]
    from samtranslator.translator.translator import Translator  # type: ignore[import-untyped]

    # A session with a region and nothing else: the translator only reads its region (for the
    # partition and the pseudo parameters); no credentials are looked up and nothing is called.
    session = Session(region_name=REGION, aws_access_key_id="offline", aws_secret_access_key="offline")
    translator = Translator(managed_policy_map={}, sam_parser=Parser(), plugins=[], boto_session=session)
    translated = translator.translate(
        sam_template=_packaged(template),
        parameter_values={},
        get_managed_policy_map=lambda: {},
    )
    return json.loads(json.dumps(translated))  # type: ignore[no-any-return]


@cache
def _translated() -> dict[str, Any]:
    return translate(_load())


def translated_template() -> dict[str, Any]:
    """The CloudFormation template that the SAM transform produces. A fresh copy each call."""
    return copy.deepcopy(_translated())


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == resource_type
    }


# ------------------------------------------------------------------------------------------------
# Conditions, the way CloudFormation applies them on deploy
# ------------------------------------------------------------------------------------------------
_NO_VALUE = object()


def resolve(template: dict[str, Any], parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """`template` as CloudFormation would deploy it with these parameter values (defaults for the
    rest): Conditions evaluated, resources and outputs whose condition is false dropped, `Fn::If`
    replaced by the branch taken, `AWS::NoValue` removed. Refs to the parameters given (and their
    `${Name}` in `Fn::Sub` strings) become their values; the others stay Refs, so that a template
    resolved with no parameters reads as written for the default case."""
    given = {name: str(value) for name, value in (parameters or {}).items()}
    declared = template.get("Parameters", {})
    unknown = set(given) - set(declared)
    assert not unknown, f"not parameters of the template: {sorted(unknown)}"
    values = {name: str(p.get("Default", "")) for name, p in declared.items()} | given
    definitions = template.get("Conditions", {})
    evaluated: dict[str, bool] = {}

    def scalar(node: Any) -> str:
        if isinstance(node, dict) and set(node) == {"Ref"} and node["Ref"] in values:
            return values[node["Ref"]]
        assert not isinstance(node, dict | list), f"cannot evaluate {node!r} in a condition"
        return str(node).lower() if isinstance(node, bool) else str(node)

    def condition(name: str) -> bool:
        if name not in evaluated:
            evaluated[name] = truth(definitions[name])
        return evaluated[name]

    def truth(node: Any) -> bool:
        [(fn, args)] = node.items()
        if fn == "Fn::Equals":
            return scalar(args[0]) == scalar(args[1])
        if fn == "Fn::Not":
            return not truth(args[0])
        if fn == "Fn::And":
            return all(truth(a) for a in args)
        if fn == "Fn::Or":
            return any(truth(a) for a in args)
        if fn == "Condition":
            return condition(args)
        raise AssertionError(f"unknown condition function {fn}")

    def substitute(text: str) -> str:
        for name, value in given.items():
            text = text.replace("${" + name + "}", value)
        return text

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (walk(item) for item in node) if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if set(node) == {"Fn::If"}:
            name, yes, no = node["Fn::If"]
            return walk(yes if condition(name) else no)
        if set(node) == {"Ref"}:
            if node["Ref"] == "AWS::NoValue":
                return _NO_VALUE
            if node["Ref"] in given:
                return given[node["Ref"]]
        if set(node) == {"Fn::Sub"}:
            sub = node["Fn::Sub"]
            if isinstance(sub, str):
                return {"Fn::Sub": substitute(sub)}
            return {"Fn::Sub": [substitute(sub[0]), walk(sub[1])]}
        return {k: v for k, v in ((k, walk(v)) for k, v in node.items()) if v is not _NO_VALUE}

    resolved = copy.deepcopy(template)
    for section in ("Resources", "Outputs"):
        kept = {}
        for logical_id, item in resolved.get(section, {}).items():
            name = item.pop("Condition", None)
            if name is None or condition(name):
                kept[logical_id] = walk(item)
        resolved[section] = kept
    resolved.pop("Conditions", None)
    return resolved
