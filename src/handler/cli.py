"""`python -m handler.cli`: manage project config (and, later, API keys) from a terminal.

    python -m handler.cli config validate config/*.yaml
    python -m handler.cli config push config/demo.yaml --prefix /chat-gateway [--region eu-west-1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _config(args: argparse.Namespace) -> int:
    from handler.config.files import ConfigFileError, load_file, push

    try:
        configs = [load_file(Path(f)) for f in args.files]  # every file valid before any write
    except ConfigFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.action == "validate":
        for c in configs:
            print(f"ok: {c.project} ({len(c.models)} models, {len(c.tools)} tools, {len(c.campaigns)} campaigns)")
        return 0
    import boto3

    ssm = boto3.client("ssm", region_name=args.region) if args.region else boto3.client("ssm")
    for c in configs:
        names = push(c, args.prefix, ssm)
        print(f"pushed {c.project}: {len(names)} parameters under {args.prefix}/projects/{c.project}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m handler.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    config = sub.add_parser("config", help="validate or push project config files")
    config.add_argument("action", choices=["validate", "push"])
    config.add_argument("files", nargs="+")
    config.add_argument("--prefix", default="/chat-gateway", help="SSM path prefix (CONFIG_PREFIX)")
    config.add_argument("--region", default=None)
    config.set_defaults(func=_config)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
