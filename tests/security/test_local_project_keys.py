"""`make dev`'s per-project keys: `sk-local-<project>` is scoped to that project (dev auth only),
so that isolation can be tried locally; deployments (`AUTH_MODE=keys`) never accept them."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

CHAT = "/api/v1/chat/completions"


def chat(client: TestClient, key: str, model: str) -> tuple[int, bytes]:
    r = client.post(
        CHAT,
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {key}"},
    )
    return r.status_code, r.content


@pytest.fixture(autouse=True)
def local_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    from handler.settings import get_settings

    monkeypatch.setenv("LOCAL_PROJECT_KEYS", "demo,lab")  # what `make dev` sets: the projects it loaded
    get_settings.cache_clear()


def test_a_local_project_key_reaches_its_project_only(client: TestClient) -> None:
    assert chat(client, "sk-local-demo", "demo")[0] == 200
    other = chat(client, "sk-local-demo", "lab")
    missing = chat(client, "sk-local-demo", "no-such-project")
    assert other[0] == 404
    assert other[1].replace(b"lab", b"X") == missing[1].replace(b"no-such-project", b"X")
    assert chat(client, "sk-local-lab", "lab")[0] == 200
    assert chat(client, "sk-local-dev", "lab")[0] == 200  # the all-projects dev key
    assert chat(client, "sk-local-other", "demo")[0] == 401  # a project make dev did not load


def test_deployments_refuse_local_keys(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from handler.settings import get_settings

    mp = monkeypatch
    mp.setenv("AUTH_MODE", "keys")
    get_settings.cache_clear()
    try:
        assert chat(client, "sk-local-demo", "demo")[0] == 401
    finally:
        mp.setenv("AUTH_MODE", "dev")
        get_settings.cache_clear()
