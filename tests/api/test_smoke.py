from fastapi.testclient import TestClient

from tests.conftest import table_items


def test_demo_echo(client: TestClient) -> None:
    r = client.post("/api/v1/chat/completions", json={"model": "demo", "messages": [{"role": "user", "content": "Hi there"}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["choices"][0]["message"]["content"] == "Hi there"
    assert len(table_items()) == 1
