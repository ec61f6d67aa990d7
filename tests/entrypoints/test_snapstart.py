"""SnapStart's runtime hooks (handler/entrypoints/snapstart.py), called directly: after a restore,
nothing that init left behind is shared with the other restored environments."""

from __future__ import annotations

import asyncio
import random
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from handler.entrypoints import snapstart


@pytest.fixture
def unregistered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(snapstart, "_registered", False)
    yield


def test_register_does_nothing_off_lambda(unregistered: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # not importable, as off Lambda
    assert snapstart.register() is False
    assert snapstart._registered is False


def test_register_registers_the_after_restore_hook_once(
    unregistered: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    registered: list[tuple[Any, tuple[Any, ...]]] = []
    library = types.ModuleType("snapshot_restore_py")
    library.register_after_restore = lambda func, *args: registered.append((func, args))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", library)
    app = object()
    assert snapstart.register(app) is True
    assert snapstart.register(app) is True
    assert registered == [(snapstart.after_restore, (app,))]


def test_restored_environments_draw_different_random_numbers() -> None:
    random.seed(1234)
    snapshot = random.getstate()  # what every environment restored from one snapshot starts with
    shared = [random.random()]
    random.setstate(snapshot)
    shared.append(random.random())
    assert shared[0] == shared[1]  # without the hook: the same "random" draw everywhere

    draws = []
    for _ in range(2):
        random.setstate(snapshot)
        snapstart.after_restore()
        draws.append(random.random())
    assert draws[0] != draws[1]


def test_after_restore_forgets_pooled_httpx_clients() -> None:
    from handler.providers import http_client

    async def around_a_restore() -> tuple[Any, Any, Any]:
        before = http_client.shared_client()
        again = http_client.shared_client()
        snapstart.after_restore()
        return before, again, http_client.shared_client()

    before, again, after = asyncio.run(around_a_restore())
    assert before is again  # pooled across requests
    assert after is not before


def test_after_restore_forgets_aws_clients_credentials_and_services(aws: dict[str, str]) -> None:
    from handler import aws as aws_clients
    from handler import wiring

    ssm = aws_clients.client("ssm")
    assert aws_clients.client("ssm") is ssm
    session = aws_clients._session()
    assert session._credentials is not None  # resolved when the client was made
    service = wiring.default_service()

    class App:
        state = types.SimpleNamespace(services=object())

    snapstart.after_restore(App)

    assert session._credentials is None
    assert aws_clients._session() is session  # the parsed service models are kept
    assert aws_clients.client("ssm") is not ssm
    assert wiring.default_service() is not service
    assert App.state.services is None


def test_after_restore_imports_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Modules that were never loaded hold nothing to reset: the hook must not load them."""
    for name in ("handler.providers.http_client", "handler.wiring", "handler.aws"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    snapstart.after_restore()
    assert not {"handler.providers.http_client", "handler.wiring", "handler.aws"} & set(sys.modules)
