"""`python -m gatewayctl`: manage project config and API keys from a terminal, and run the stack
locally.

python -m gatewayctl config validate config/*.yaml
python -m gatewayctl config push config/demo.yaml [--prefix /chat-gateway] [--region eu-west-1]
python -m gatewayctl keys create --project demo [--project other] [--name ci] [--table T]
python -m gatewayctl keys list
python -m gatewayctl keys revoke KEY_ID
python -m gatewayctl dev | invoke EVENT.json... | batch FILE.jsonl   (`make dev`, `make invoke`, `make batch`)

The table and the SSM prefix default to the gateway's own settings (`TABLE_NAME`, `CONFIG_PREFIX`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from handler.settings import get_settings


def _config(args: argparse.Namespace) -> int:
    from handler.config.files import ConfigFileError, load_file, push

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

    ssm = boto3.client("ssm", region_name=args.region) if args.region else boto3.client("ssm")
    prefix = args.prefix or get_settings().config_prefix
    for c in configs:
        names = push(c, prefix, ssm)
        print(f"pushed {c.project}: {len(names)} parameters under {prefix}/projects/{c.project}")
    return 0


def _keys(args: argparse.Namespace) -> int:
    """API keys in the table: the key is printed once, on stdout, at creation; only its hash is kept."""
    from datetime import UTC, datetime

    import boto3

    from handler.store.keys import DynamoKeyStore, KeyStoreError, UnknownKey

    table = args.table or get_settings().table_name
    ddb = boto3.client("dynamodb", region_name=args.region) if args.region else boto3.client("dynamodb")
    store = DynamoKeyStore(table, ddb)
    try:
        if args.action == "create":
            if not args.project:
                print("error: keys create needs at least one --project", file=sys.stderr)
                return 2
            try:
                key, secret = store.create(args.project, name=args.name)
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
    config.add_argument(
        "--prefix", default=None, help="SSM path prefix (default: CONFIG_PREFIX, else /chat-gateway)"
    )
    config.add_argument("--region", default=None)
    config.set_defaults(func=_config)
    keys = sub.add_parser("keys", help="create, list or revoke API keys")
    keys.add_argument("action", choices=["create", "list", "revoke"])
    keys.add_argument("key_id", nargs="?", help="the key to revoke")
    keys.add_argument("--project", action="append", default=[], help="a project the key may use (repeat)")
    keys.add_argument("--name", default=None, help="a label for the key (who or what uses it)")
    keys.add_argument("--table", default=None, help="DynamoDB table (default: TABLE_NAME, else chat-gateway)")
    keys.add_argument("--region", default=None)
    keys.set_defaults(func=_keys)
    for name, text in LOCAL_COMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)
    args = parser.parse_args(argv)
    from botocore.exceptions import NoCredentialsError, NoRegionError

    try:
        result: int = args.func(args)
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
