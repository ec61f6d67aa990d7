"""Create the stack's AWS resources in an emulation (moto) and load project config into its SSM.

Used by `make dev`, `make invoke`, the local batch command and the tests, so that all of them run
against the same shapes as the deployed stack (`template.yaml`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

TABLE_KEYS = {
    "AttributeDefinitions": [
        {"AttributeName": name, "AttributeType": "S"}
        for name in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")
    ],
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": index,
            "KeySchema": [
                {"AttributeName": f"{prefix}pk", "KeyType": "HASH"},
                {"AttributeName": f"{prefix}sk", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
        for index, prefix in (("GSI1", "gsi1"), ("GSI2", "gsi2"))
    ],
    "BillingMode": "PAY_PER_REQUEST",
}

# The port of the emulation that `make dev` runs (AWS_PORT overrides it), fixed so that what runs
# outside the process can find it: `sam local invoke --env-vars events/env.json` (gatewayctl env).
DEFAULT_AWS_PORT = 5000

LOCAL_ENV = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "TABLE_NAME": "chat-gateway",
    "IDEMPOTENCY_TABLE_NAME": "chat-gateway-idempotency",
    "CONFIG_PREFIX": "/chat-gateway",
    "BUCKET_NAME": "chat-gateway-local",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "ChatGateway",
    "POWERTOOLS_SERVICE_NAME": "chat-gateway",
}


def local_environment(endpoint_url: str) -> dict[str, str]:
    return {**LOCAL_ENV, "AWS_ENDPOINT_URL": endpoint_url}


def create_resources(session: Any, env: dict[str, str]) -> dict[str, str]:
    """Table, idempotency table, bucket and queues. Returns the env entries they add."""
    ddb = session.client("dynamodb")
    existing = ddb.list_tables()["TableNames"]
    if env["TABLE_NAME"] not in existing:
        ddb.create_table(TableName=env["TABLE_NAME"], **TABLE_KEYS)
    if env["IDEMPOTENCY_TABLE_NAME"] not in existing:
        ddb.create_table(
            TableName=env["IDEMPOTENCY_TABLE_NAME"],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    session.client("s3").create_bucket(Bucket=env["BUCKET_NAME"])
    sqs = session.client("sqs")
    added = {}
    for var, name in (
        ("BATCH_QUEUE_URL", "chat-gateway-batch"),
        ("STORE_RETRY_QUEUE_URL", "chat-gateway-store-retry"),
    ):
        added[var] = sqs.create_queue(QueueName=name)["QueueUrl"]
    return added


def load_configs(session: Any, config_dir: Path, prefix: str) -> list[str]:
    from gatewayctl.config_files import load_dir, push

    ssm = session.client("ssm")
    configs = load_dir(config_dir)
    for config in configs:
        push(config, prefix, ssm, prune=False)  # a fresh emulation has nothing stale
    return [c.project for c in configs]


def bootstrap(endpoint_url: str, config_dir: Path, *, apply_env: bool = True) -> dict[str, str]:
    """Create everything in the emulation at `endpoint_url`; return (and by default apply) the env."""
    import boto3

    env = local_environment(endpoint_url)
    session = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env["AWS_SESSION_TOKEN"],
        region_name=env["AWS_REGION"],
    )
    os.environ["AWS_ENDPOINT_URL"] = endpoint_url
    env.update(create_resources(session, env))
    load_configs(session, config_dir, env["CONFIG_PREFIX"])
    if apply_env:
        os.environ.update(env)
        from handler import aws, wiring

        aws.reset_clients()
        wiring.reset()
    return env


def start_emulation(port: int = 0) -> tuple[Any, str]:
    """moto's server mode in this process (a thread): DynamoDB, SSM, S3, SQS, Lambda, ..."""
    import socket

    from moto.server import ThreadedMotoServer

    serialise_moto_dynamodb_writes()

    if not port:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"


MOTO_DYNAMODB_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_serialised = False


def serialise_moto_dynamodb_writes() -> None:
    """Make each emulated DynamoDB write atomic, as DynamoDB's own are. Idempotent.

    moto's in-process backend is not thread-safe: threads updating one item at once (a batch
    invocation counting its messages concurrently, campaign counters) lose `ADD` increments. The
    gateway relies on DynamoDB's atomic updates and has no workaround of its own, so the emulation
    (dev server, local invoke and batch, the tests) is fixed here: every write of moto's DynamoDB
    backend goes through one re-entrant lock (a transaction's writes call the others).
    """
    global _serialised
    if _serialised:
        return
    import functools
    import threading

    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()

    def serialised(write: Any) -> Any:
        @functools.wraps(write)
        def locked(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return write(*args, **kwargs)

        return locked

    _roll_back_transactions_by_item(DynamoDBBackend)
    for name in MOTO_DYNAMODB_WRITES:
        setattr(DynamoDBBackend, name, serialised(getattr(DynamoDBBackend, name)))
    _serialised = True


def _roll_back_transactions_by_item(backend: Any) -> None:
    """moto backs a transaction up by deep-copying every table it writes, whole: each transaction
    costs as much as the table holds, and the usage counters (one transaction per request) made a
    1,000-line batch, or a dev server that has answered a few thousand requests, crawl. Here the
    backup is the items the transaction names instead (what DynamoDB's own rollback amounts to);
    moto's own logic decides as before, its "backup" tables being the live ones."""
    import copy
    import threading
    import types

    import moto.dynamodb.models as models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    in_transaction = threading.local()

    def deepcopy(value: Any, memo: Any = None) -> Any:
        if isinstance(value, Table) and getattr(in_transaction, "on", False):
            return value  # the items are backed up by the wrapper below
        return copy.deepcopy(value, memo)

    models.copy = types.SimpleNamespace(**{**vars(copy), "deepcopy": deepcopy})  # type: ignore[attr-defined,assignment]
    original = backend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        saved: list[tuple[Any, DynamoType, DynamoType | None, Any]] = []
        for entry in transact_items:
            op = next(iter(entry.values())) if len(entry) == 1 else {}
            table = self.tables.get(op.get("TableName"))
            key = (op.get("Item") or op.get("Key")) if table is not None else None
            if table is None or not key or table.hash_key_attr not in key:
                continue
            hash_key = DynamoType(key[table.hash_key_attr])
            range_attr = table.range_key_attr
            range_key = DynamoType(key[range_attr]) if range_attr and range_attr in key else None
            if range_attr and range_key is None:
                continue
            saved.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
        in_transaction.on = True
        try:
            return original(self, transact_items)
        except BaseException:
            for table, hash_key, range_key, item in reversed(saved):
                if range_key is None:
                    table.items.pop(hash_key, None)
                    if item is not None:
                        table.items[hash_key] = item
                else:
                    table.items[hash_key].pop(range_key, None)
                    if item is not None:
                        table.items[hash_key][range_key] = item
                    elif not table.items[hash_key]:
                        del table.items[hash_key]
            raise
        finally:
            in_transaction.on = False

    backend.transact_write_items = transact_write_items
