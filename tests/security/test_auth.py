"""API keys: 401 without a valid key; outside the key's projects (lookups included) the same 404 as
for what does not exist (tests/security/test_isolation.py compares the bytes); revocation."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import AUTH, put_project, table_items

CHAT = "/api/v1/chat/completions"


def ask(client: TestClient, key: str | None, model: str = "demo", **extra: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {"Authorization": ""}
    body = {"model": model, "messages": [{"role": "user", "content": "hello"}], **extra}
    return client.post(CHAT, json=body, headers=headers)


@pytest.fixture
def keys_mode(clean_aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A deployment's auth: table keys only, the dev key refused."""
    from handler import wiring

    monkeypatch.setenv("AUTH_MODE", "keys")
    wiring.reset()
    put_project({"project": "other", "default_model": "echo", "models": {"echo": {"provider": "echo"}}})
    yield
    wiring.reset()


@pytest.fixture
def app_client(keys_mode: None) -> Iterator[TestClient]:
    from handler.wiring import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as c:  # no default key
        yield c


def create_key(*projects: str, name: str | None = None) -> tuple[str, str]:
    from handler.store.keys import DynamoKeyStore

    record, key = DynamoKeyStore("chat-gateway").create(projects, name=name)
    return record.key_id, key


def test_missing_malformed_unknown_and_dev_keys_are_401_in_keys_mode(app_client: TestClient) -> None:
    from handler.store.keys import new_key

    _, never_created = new_key()
    cases = {
        "no header": {},
        "empty": {"Authorization": ""},
        "not bearer": {"Authorization": "Basic dXNlcjpwYXNz"},
        "bearer, no key": {"Authorization": "Bearer "},
        "garbage": {"Authorization": "Bearer not-a-key"},
        "well-formed, unknown": {"Authorization": f"Bearer {never_created}"},
        "dev key outside dev mode": AUTH,
    }
    for case, headers in cases.items():
        r = app_client.post(
            CHAT, json={"model": "demo", "messages": [{"role": "user", "content": "x"}]}, headers=headers
        )
        assert r.status_code == 401, (case, r.text)
        error = r.json()["error"]
        assert error["type"] == "authentication_error", case
        assert error["code"] in ("missing_api_key", "invalid_api_key"), case
    # Lookups are guarded the same way.
    assert app_client.get("/api/v1/completions/00000000-0000-0000-0000-000000000000").status_code == 401
    assert app_client.get("/api/v1/sessions/00000000-0000-0000-0000-000000000000").status_code == 401
    assert not [i for i in table_items() if i["type"]["S"] == "completion"]  # nothing ran, nothing stored


def test_health_stays_open(app_client: TestClient) -> None:
    assert app_client.get("/health").json() == {"status": "ok"}


def test_key_works_in_its_projects_and_finds_nothing_elsewhere(app_client: TestClient) -> None:
    _, demo_key = create_key("demo", name="demo-app")
    _, both_key = create_key("demo", "other")

    ok = ask(app_client, demo_key)
    assert ok.status_code == 200, ok.text
    assert ask(app_client, demo_key, model="demo/slow-echo", max_ttft_ms=0).status_code == 200

    denied = ask(app_client, demo_key, model="other")
    assert denied.status_code == 404
    assert denied.json()["error"] == {
        "message": "EntityNotFound: project 'other' does not exist",
        "type": "not_found_error",
        "code": "not_found",
        "param": "model",
    }
    # A project that doesn't exist is the same 404: the key's scope is checked before anything is
    # read, so a key can't probe which projects exist.
    missing = ask(app_client, demo_key, model="no-such-project")
    assert missing.status_code == 404
    assert missing.content == denied.content.replace(b"'other'", b"'no-such-project'")

    for model in ("demo", "other"):
        assert ask(app_client, both_key, model=model).status_code == 200


def test_reading_another_projects_completion_or_session_is_a_404(app_client: TestClient) -> None:
    _, demo_key = create_key("demo")
    _, other_key = create_key("other")
    answer = ask(app_client, demo_key).json()
    completion_id, session_id = answer["choices"][0]["completion_id"], answer["session_id"]

    own = {"Authorization": f"Bearer {demo_key}"}
    stranger = {"Authorization": f"Bearer {other_key}"}
    assert app_client.get(f"/api/v1/completions/{completion_id}", headers=own).status_code == 200
    assert app_client.get(f"/api/v1/sessions/{session_id}", headers=own).status_code == 200

    r = app_client.get(f"/api/v1/completions/{completion_id}", headers=stranger)
    assert r.status_code == 404, r.text
    assert "hello" not in r.text  # nothing of the record leaks into the refusal
    r = app_client.get(f"/api/v1/sessions/{session_id}", headers=stranger)
    assert r.status_code == 404, r.text
    assert completion_id not in r.text


def test_a_session_id_used_in_two_projects_is_two_sessions(app_client: TestClient) -> None:
    _, demo_key = create_key("demo")
    _, both_key = create_key("demo", "other")
    session = "5b0c3f6e-8a59-4a7e-9a43-2d3c1a6f0b11"
    assert ask(app_client, demo_key, session_id=session).status_code == 200
    assert ask(app_client, both_key, model="other", session_id=session).status_code == 200
    r = app_client.get(f"/api/v1/sessions/{session}", headers={"Authorization": f"Bearer {demo_key}"})
    assert r.status_code == 200 and [c["project"] for c in r.json()["completions"]] == ["demo"]
    both = {"Authorization": f"Bearer {both_key}"}
    r = app_client.get(f"/api/v1/sessions/{session}", headers=both)
    assert r.status_code == 400 and r.json()["error"]["param"] == "project"  # which one?
    r = app_client.get(f"/api/v1/sessions/{session}?project=other", headers=both)
    assert r.status_code == 200 and [c["project"] for c in r.json()["completions"]] == ["other"]


def test_only_the_hash_is_stored(app_client: TestClient) -> None:
    key_id, key = create_key("demo", name="ci")
    items = [i for i in table_items() if i.get("type", {}).get("S") == "api_key"]
    assert len(items) == 1
    assert key not in str(items)
    assert items[0]["key_hash"]["S"] == hashlib.sha256(key.encode()).hexdigest()
    assert items[0]["pk"]["S"] == f"APIKEY#{key_id}"


def test_a_wrong_secret_with_a_real_key_id_is_401(app_client: TestClient) -> None:
    from handler.store.keys import PREFIX

    key_id, key = create_key("demo")
    forged = f"{PREFIX}{key_id}-{'A' * 43}"
    assert forged != key
    assert ask(app_client, forged).status_code == 401
    assert ask(app_client, key).status_code == 200


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_revocation_takes_effect_within_the_cache_time(
    keys_mode: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from gatewayctl.cli import main
    from handler.store.keys import CachedKeys, DynamoKeyStore
    from handler.wiring import create_app

    store = DynamoKeyStore("chat-gateway")
    reads: list[str] = []

    def verify(key: str) -> object:
        reads.append(key)
        return store.verify(key)

    clock = Clock()
    app = create_app()
    app.state.keys = CachedKeys(verify, ttl_s=30, clock=clock)  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False) as client:
        assert main(["keys", "create", "--project", "demo", "--name", "revoke-me"]) == 0
        key = capsys.readouterr().out.strip()
        key_id = key.split("-")[2]

        assert ask(client, key).status_code == 200
        assert ask(client, key).status_code == 200
        assert len(reads) == 1  # a warm instance answers from memory

        assert main(["keys", "revoke", key_id]) == 0
        clock.now += 29  # within the documented window the cached answer may still be used
        assert ask(client, key).status_code == 200
        clock.now += 1.01  # past it: refused, on this instance like on every other
        r = ask(client, key)
        assert r.status_code == 401, r.text
        assert r.json()["error"]["message"] == "invalid or revoked API key"
        assert len(reads) == 2


def test_revocation_is_immediate_on_an_instance_that_had_not_cached_the_key(app_client: TestClient) -> None:
    from gatewayctl.cli import main

    key_id, key = create_key("demo")
    assert main(["keys", "revoke", key_id]) == 0
    assert ask(app_client, key).status_code == 401


def test_cli_lists_without_secrets_and_refuses_unknown_ids(
    keys_mode: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from gatewayctl.cli import main

    assert main(["keys", "create", "--project", "demo", "--project", "other", "--name", "ci"]) == 0
    created = capsys.readouterr()
    key = created.out.strip()
    assert key.startswith("sk-gw-") and "\n" not in key
    assert "shown once" in created.err
    key_id = key.split("-")[2]

    assert main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert key_id in listing and "active" in listing and "demo,other" in listing and "ci" in listing
    assert key not in listing and hashlib.sha256(key.encode()).hexdigest() not in listing

    assert main(["keys", "revoke", key_id]) == 0
    capsys.readouterr()
    assert main(["keys", "list"]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["keys", "revoke", "0123456789abcdef"]) == 1
    assert main(["keys", "create"]) == 2
    assert main(["keys", "create", "--project", "bad name!"]) == 2


@pytest.mark.parametrize("mode", ["off", "none", "", "disabled", "KEYS-ONLY"])
def test_an_unknown_auth_mode_refuses_everything(
    clean_aws: dict[str, str], monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    from handler import wiring
    from handler.wiring import create_app

    monkeypatch.setenv("AUTH_MODE", mode)
    wiring.reset()
    with TestClient(create_app(), raise_server_exceptions=False, headers=AUTH) as client:
        r = ask(client, "sk-local-dev")
        assert r.status_code == 500, r.text
        assert r.json()["error"]["code"] == "auth_misconfigured"
        assert client.get("/health").status_code == 200
    assert not table_items()
    wiring.reset()


def test_dev_mode_accepts_the_dev_key_and_table_keys(module_client: TestClient) -> None:
    _, demo_key = create_key("demo")
    assert ask(module_client, "sk-local-dev").status_code == 200
    assert ask(module_client, demo_key).status_code == 200
    assert ask(module_client, demo_key, model="other-project").status_code == 404
    assert ask(module_client, "sk-local-dev-but-not-quite").status_code == 401


def test_key_table_unreachable_is_503_and_nobody_gets_in(app_client: TestClient) -> None:
    from handler.store.keys import CachedKeys, KeyStoreError

    def broken(key: str) -> None:
        raise KeyStoreError("get_item on the key table failed: EndpointConnectionError")

    app_client.app.state.keys = CachedKeys(broken, ttl_s=30)
    _, key = create_key("demo")
    r = ask(app_client, key)
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "auth_unavailable"


def test_every_other_route_refuses_another_projects_data(
    app_client: TestClient, clean_aws: dict[str, str]
) -> None:
    """Campaigns, batches, listings, feedback and outcomes: outside the key's projects, the 404 of
    a project (or record) that does not exist."""
    import boto3

    _, demo_key = create_key("demo")
    _, other_key = create_key("other")
    own = {"Authorization": f"Bearer {other_key}"}
    stranger = {"Authorization": f"Bearer {demo_key}"}

    answer = ask(app_client, other_key, model="other").json()
    cid, sid = answer["choices"][0]["completion_id"], answer["session_id"]
    boto3.client("s3").put_object(
        Bucket=clean_aws["BUCKET_NAME"],
        Key="batches/uploads/other/other.jsonl",
        Body=b'{"custom_id": "1", "body": {"model": "other", "messages": [{"role": "user", "content": "x"}]}}\n',
    )
    batch = app_client.post(
        "/api/v1/batches",
        json={"project": "other", "input_key": "batches/uploads/other/other.jsonl"},
        headers=own,
    )
    assert batch.status_code == 202, batch.text
    batch_id = batch.json()["id"]

    campaign = "5b0c3f6e-8a59-4a7e-9a43-2d3c1a6f0b12"
    requests: list[tuple[str, str, dict[str, object] | None]] = [
        ("GET", "/api/v1/projects/other/completions", None),
        ("GET", "/api/v1/projects/other/ab_campaigns", None),
        ("GET", f"/api/v1/projects/other/ab_campaigns/{campaign}/results", None),
        ("GET", f"/api/v1/ab_campaigns/{campaign}/results?project=other", None),
        ("GET", f"/api/v1/completions/{cid}/feedback", None),
        ("POST", "/api/v1/feedback", {"completion_id": cid, "metric": "thumbs", "value": True}),
        ("POST", "/api/v1/outcome", {"project_id": "other", "session_id": sid, "metric": "sale", "value": 1}),
        ("GET", "/api/v1/batches?project=other", None),
        ("POST", "/api/v1/batches", {"project": "other", "input_key": "batches/uploads/other/other.jsonl"}),
    ]
    for method, path, body in requests:
        r = app_client.request(method, path, json=body, headers=stranger)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert r.json()["error"]["type"] == "not_found_error"
        ghost = app_client.request(
            method, path.replace("other", "ghost"), json=_ghost(body), headers=stranger
        )
        assert r.content == ghost.content.replace(b"ghost", b"other"), (method, path)
        mine = app_client.request(method, path, json=body, headers=own)
        assert mine.status_code < 400 or mine.status_code == 404, (method, path, mine.text)
    # Another project's batch answers like one that does not exist (OpenAI: a batch id outside the
    # key's project is a 404), and its own key reads it.
    hidden = app_client.get(f"/api/v1/batches/{batch_id}", headers=stranger)
    assert hidden.status_code == 404 and hidden.json()["error"]["param"] == "batch_id"
    assert app_client.get(f"/api/v1/batches/{batch_id}", headers=own).status_code == 200
    # Listing without a project filter shows only the key's own projects' batches.
    listed = app_client.get("/api/v1/batches", headers=stranger).json()
    assert batch_id not in str(listed)
    assert batch_id in str(app_client.get("/api/v1/batches", headers=own).json())


def _ghost(body: dict[str, object] | None) -> dict[str, object] | None:
    """The same request for a project named `ghost`, which does not exist."""
    if body is None:
        return None
    return {k: "ghost" if v == "other" else v for k, v in body.items()}
