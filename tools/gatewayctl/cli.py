"""`python -m gatewayctl`: manage project config and API keys from a terminal, and run the stack
locally.

python -m gatewayctl config validate config/*.yaml
python -m gatewayctl config push config/demo.yaml [--prefix /chat-gateway] [--region eu-west-1]
python -m gatewayctl keys create --project demo [--project other] [--name ci] [--table T]
python -m gatewayctl keys list
python -m gatewayctl keys revoke KEY_ID
python -m gatewayctl outputs [KEY] --stack NAME [--region R]       a deployed stack's outputs
python -m gatewayctl env --local | --stack NAME [--out events/env.json]   `sam local invoke --env-vars`
python -m gatewayctl keys create|update [KEY_ID] --rpm 60 --tpm 100000 --tpd 1000000 --usd-per-month 50
python -m gatewayctl usage --project demo [--from 2026-12-01] [--to 2026-12-31] [--group-by model|key|day]
python -m gatewayctl dev | invoke EVENT.json... | batch FILE.jsonl   (`make dev`, `make invoke`, `make batch`)

The table and the SSM prefix default to the gateway's own settings (`TABLE_NAME`, `CONFIG_PREFIX`);
with `--stack NAME` (and `--region`) every command takes them from the deployed stack's outputs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gatewayctl import envfile
from gatewayctl.local.bootstrap import DEFAULT_AWS_PORT, LOCAL_ENV
from gatewayctl.stack import StackError, describe
from handler.settings import get_settings

if TYPE_CHECKING:
    from handler.config.models import Quotas
    from handler.store.keys import DynamoKeyStore


def _config(args: argparse.Namespace) -> int:
    from gatewayctl.config_files import ConfigFileError, load_file, push

    try:
        configs = [load_file(Path(f)) for f in args.files]  # every file valid before any write
    except ConfigFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.action == "validate":
        for c in configs:
            counts = f"{len(c.models)} models, {len(c.tools)} tools, {len(c.campaigns)} campaigns"
            print(f"ok: {c.project} ({counts})")
        return 0
    import boto3

    region, prefix = args.region, args.prefix or get_settings().config_prefix
    if args.stack:
        stack = describe(args.stack, args.region)
        region, prefix = stack.region, stack.output("ConfigPrefix")
    ssm = boto3.client("ssm", region_name=region) if region else boto3.client("ssm")
    for c in configs:
        names = push(c, prefix, ssm)
        print(f"pushed {c.project}: {len(names)} parameters under {prefix}/projects/{c.project}")
    return 0


def _keys(args: argparse.Namespace) -> int:
    """API keys in the table: the key is printed once, on stdout, at creation; only its hash is kept."""
    from datetime import UTC, datetime

    import boto3

    from handler.store.keys import DynamoKeyStore, KeyStoreError, UnknownKey

    region, table = args.region, args.table or get_settings().table_name
    if args.stack:
        stack = describe(args.stack, args.region)
        region, table = stack.region, stack.output("TableName")
    ddb = boto3.client("dynamodb", region_name=region) if region else boto3.client("dynamodb")
    store = DynamoKeyStore(table, ddb)
    try:
        if args.action == "create":
            if not args.project:
                print("error: keys create needs at least one --project", file=sys.stderr)
                return 2
            try:
                key, secret = store.create(args.project, name=args.name, quotas=_quotas(args))
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            scope = ", ".join(key.projects)
            print(f"created key {key.key_id} for project(s) {scope} in table {table}", file=sys.stderr)
            print("the key is shown once, now: store it somewhere safe", file=sys.stderr)
            print(secret)
        elif args.action == "list":
            for k in store.list():
                created = datetime.fromtimestamp(k.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                status = "active" if k.active else "revoked"
                print(f"{k.key_id}  {status:<7}  {created}  {','.join(k.projects)}  {k.name or ''}".rstrip())
        elif args.action == "update":
            return _update_key(store, args, table)
        else:
            if not args.key_id:
                print("error: keys revoke needs a KEY_ID", file=sys.stderr)
                return 2
            try:
                store.revoke(args.key_id)
            except UnknownKey:
                print(f"error: no key {args.key_id!r} in table {table}", file=sys.stderr)
                return 1
            print(f"revoked {args.key_id}: refused everywhere within API_KEY_CACHE_S (default 30 s)")
    except KeyStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _outputs(args: argparse.Namespace) -> int:
    """A deployed stack's outputs (`ChatCompletionsUrl`, `TableName`, ...): all, or one's value."""
    stack = describe(args.stack, args.region)
    if args.key:
        print(stack.output(args.key))
        return 0
    for key, value in sorted(stack.outputs.items()):
        print(f"{key}\t{value}")
    return 0


def _env(args: argparse.Namespace) -> int:
    """The env file of `sam local invoke --env-vars` (gatewayctl.envfile)."""
    template = envfile.load_template(Path(args.template) if args.template else envfile.TEMPLATE_PATH)
    if args.stack:
        stack = describe(args.stack, args.region)
        env, region, credentials = envfile.for_stack(stack, template), stack.region, ""
    else:
        port = args.aws_port or os.environ.get("AWS_PORT") or DEFAULT_AWS_PORT
        if not str(port).isdigit():
            print(f"error: AWS_PORT={port!r} is not a port number", file=sys.stderr)
            return 2
        env = envfile.for_local(template, args.aws_host, int(port))
        region = LOCAL_ENV["AWS_REGION"]
        credentials = "AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_SESSION_TOKEN=local "
    text = envfile.render(env)
    if args.out == "-":
        print(text, end="")
    else:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}: {', '.join(env)}", file=sys.stderr)
    hint = f"{credentials}sam local invoke ApiFunction -e events/chat_completion.json --env-vars {args.out}"
    print(f"then: {hint} --region {region}", file=sys.stderr)
    if not args.stack:
        print(
            f"(on Linux add: --add-host {envfile.DOCKER_HOST}:172.17.0.1, the docker0 bridge)",
            file=sys.stderr,
        )
    return 0


def _add_stack_options(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    parser.add_argument(
        "--stack", required=required, default=None, help="a deployed stack: its outputs name what to use"
    )
    parser.add_argument("--region", default=None, help="the stack's region (default: AWS_DEFAULT_REGION)")


_QUOTA_OPTIONS = {
    "rpm": "requests_per_minute",
    "tpm": "tokens_per_minute",
    "tpd": "tokens_per_day",
    "usd_per_month": "usd_per_month",
}


def _quotas(args: argparse.Namespace, base: Quotas | None = None) -> Quotas:
    """The key's limits: `base` with the options given on top (0 removes a limit)."""
    from handler.config.models import Quotas

    values = base.model_dump() if base is not None else {}
    for option, field in _QUOTA_OPTIONS.items():
        given = getattr(args, option)
        if given is not None:
            values[field] = given or None
    return Quotas.model_validate(values)


def _update_key(store: DynamoKeyStore, args: argparse.Namespace, table: str) -> int:
    """`keys update KEY_ID --rpm ...`: change a key's limits; the options not given are kept."""
    from handler.store.keys import UnknownKey

    if not args.key_id:
        print("error: keys update needs a KEY_ID", file=sys.stderr)
        return 2
    current = store.get(args.key_id)
    if current is None:
        print(f"error: no key {args.key_id!r} in table {table}", file=sys.stderr)
        return 1
    try:
        key = store.set_quotas(args.key_id, _quotas(args, current.quotas))
    except ValueError as exc:  # a limit out of range, named
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except UnknownKey:
        print(f"error: no key {args.key_id!r} in table {table}", file=sys.stderr)
        return 1
    shown = key.quotas.model_dump(exclude_none=True) if key.quotas else {}
    limits = ", ".join(f"{k}={v:g}" for k, v in shown.items()) or "none"
    print(f"updated {key.key_id}: limits {limits} (in effect everywhere within API_KEY_CACHE_S)")
    return 0


def _usage(args: argparse.Namespace) -> int:
    """A project's usage report, read from the table's aggregate counters (as the API serves it)."""
    import asyncio

    import boto3

    from handler.completions.caller import Caller
    from handler.completions.usage import UsageService
    from handler.config.source import SSMConfigSource
    from handler.errors import GatewayError
    from handler.store.usage import DynamoUsageStore

    table = args.table or get_settings().table_name
    ddb = boto3.client("dynamodb", region_name=args.region) if args.region else boto3.client("dynamodb")
    config = SSMConfigSource(args.prefix or get_settings().config_prefix, 0)  # the project must exist
    service = UsageService(DynamoUsageStore(table, ddb), config)
    try:
        report = asyncio.run(
            service.report(
                Caller.anyone(), args.project, first=args.first, last=args.last, group_by=args.group_by
            )
        )
    except GatewayError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    if args.json:
        print(report.model_dump_json(indent=2))
        return 0
    print(f"usage of {report.project} from {report.first_day} to {report.last_day}, by {report.group_by}")
    header = f"{'':<32} {'requests':>9} {'prompt':>10} {'completion':>10} {'cached':>9} {'cost USD':>12}"
    print(header)
    for row in [*report.groups, report.total]:
        name = getattr(row, "key", "total")
        print(
            f"{name[:32]:<32} {row.requests:>9} {row.prompt_tokens:>10} {row.completion_tokens:>10} "
            f"{row.cached_tokens:>9} {row.cost_usd:>12.6f}"
        )
    if report.total.unpriced_completions:
        print(f"({report.total.unpriced_completions} completions of unpriced models are not in the cost)")
    if report.total.unstored_requests:
        print(
            f"({report.total.unstored_requests} of the requests were not stored (store: false): "
            "counted here, with no records)"
        )
    return 0


LOCAL_COMMANDS = {
    "dev": "the gateway on 127.0.0.1 against an embedded AWS emulation (make dev)",
    "invoke": "run a Lambda handler on event files (make invoke)",
    "batch": "run a JSONL batch file through the batch pipeline (make batch); `batch --help`",
}


def _local(command: str, argv: list[str]) -> int:
    """`dev`, `invoke` and `batch`: the local commands, each parsing the rest of the command line."""
    if command == "dev":
        from gatewayctl.local import dev

        if argv:
            print(
                "usage: python -m gatewayctl dev  (PORT and CONFIG_DIR from the environment)", file=sys.stderr
            )
            return 2
        dev.main()
        return 0
    if command == "invoke":
        from gatewayctl.local import invoke

        return invoke.main(argv)
    from gatewayctl.local import batch

    return batch.main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in LOCAL_COMMANDS:  # their options are their own: handed over unparsed
        return _local(argv[0], argv[1:])
    parser = argparse.ArgumentParser(prog="python -m gatewayctl")
    sub = parser.add_subparsers(dest="command", required=True)
    config = sub.add_parser("config", help="validate or push project config files")
    config.add_argument("action", choices=["validate", "push"])
    config.add_argument("files", nargs="+")
    config_target = config.add_mutually_exclusive_group()
    config_target.add_argument(
        "--prefix", default=None, help="SSM path prefix (default: CONFIG_PREFIX, else /chat-gateway)"
    )
    config_target.add_argument("--stack", default=None, help="a deployed stack: its ConfigPrefix output")
    config.add_argument("--region", default=None)
    config.set_defaults(func=_config)
    keys = sub.add_parser("keys", help="create, list or revoke API keys")
    keys.add_argument("action", choices=["create", "list", "revoke", "update"])
    keys.add_argument("key_id", nargs="?", help="the key to revoke or update")
    keys.add_argument("--project", action="append", default=[], help="a project the key may use (repeat)")
    keys.add_argument("--name", default=None, help="a label for the key (who or what uses it)")
    keys_target = keys.add_mutually_exclusive_group()
    keys_target.add_argument(
        "--table", default=None, help="DynamoDB table (default: TABLE_NAME, else chat-gateway)"
    )
    keys_target.add_argument("--stack", default=None, help="a deployed stack: its TableName output")
    keys.add_argument("--region", default=None)
    for flag, text in (
        ("--rpm", "requests per minute"),
        ("--tpm", "tokens per minute"),
        ("--tpd", "tokens per day"),
    ):
        keys.add_argument(flag, type=int, default=None, help=f"the key's limit of {text} (0: none)")
    keys.add_argument("--usd-per-month", type=float, default=None, help="the key's spend limit (0: none)")
    keys.set_defaults(func=_keys)
    outputs = sub.add_parser("outputs", help="a deployed stack's outputs (ChatCompletionsUrl, ...)")
    outputs.add_argument("key", nargs="?", help="print this output's value alone")
    _add_stack_options(outputs, required=True)
    outputs.set_defaults(func=_outputs)
    env = sub.add_parser("env", help="write the env file of `sam local invoke --env-vars`")
    source = env.add_mutually_exclusive_group(required=True)
    source.add_argument("--local", action="store_true", help="the local emulation (make dev), from Docker")
    source.add_argument("--stack", default=None, help="a deployed stack: its outputs and parameters")
    env.add_argument("--region", default=None, help="the stack's region (default: AWS_DEFAULT_REGION)")
    env.add_argument("--out", default="-", help="the file to write (default: stdout)")
    env.add_argument("--template", default=None, help="the stack's template (default: template.yaml)")
    env.add_argument(
        "--aws-host",
        default=envfile.DOCKER_HOST,
        help=f"--local: the host, seen from a container ({envfile.DOCKER_HOST})",
    )
    env.add_argument(
        "--aws-port",
        type=int,
        default=None,
        help=f"--local: the emulation's port (AWS_PORT, else {DEFAULT_AWS_PORT})",
    )
    env.set_defaults(func=_env)
    usage = sub.add_parser("usage", help="a project's usage and cost (from the table's counters)")
    usage.add_argument("--project", required=True)
    usage.add_argument("--from", dest="first", default=None, help="first UTC day (default: this month)")
    usage.add_argument("--to", dest="last", default=None, help="last UTC day, inclusive (default: today)")
    usage.add_argument("--group-by", default="model", choices=["model", "key", "day"])
    usage.add_argument("--json", action="store_true", help="the report as the API returns it")
    usage.add_argument("--table", default=None)
    usage.add_argument("--prefix", default=None, help="SSM path prefix of the project config")
    usage.add_argument("--region", default=None)
    usage.set_defaults(func=_usage)
    for name, text in LOCAL_COMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)
    args = parser.parse_args(argv)
    from botocore.exceptions import NoCredentialsError, NoRegionError

    try:
        result: int = args.func(args)
    except (StackError, envfile.EnvFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except NoRegionError:
        print("error: no AWS region: set AWS_REGION (or pass --region)", file=sys.stderr)
        return 2
    except NoCredentialsError:
        print(
            "error: no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            file=sys.stderr,
        )
        return 2
    return result


if __name__ == "__main__":
    raise SystemExit(main())
