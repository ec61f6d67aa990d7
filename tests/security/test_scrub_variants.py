"""Issue #11 C13: an upstream's error text reaches nobody with its key or its address in it, in any
form: altered case, url-encoded, cut short or masked, the bare `host:port`, an IP address.

Units over the scrubber with each variant, then one run through the gateway: an OpenAI-compatible
upstream that answers 401 and errors mid-stream with every variant, and the client's error body,
the log lines and the stored records are searched for each.
"""

from __future__ import annotations

from urllib.parse import quote, quote_plus, urlsplit

import pytest
from fastapi.testclient import TestClient

from handler.providers.scrub import scrub
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.security.logs import captured_logs
from tests.security.test_secrets import UPSTREAM_KEY, fake, keyed, stored_everything

__all__ = ["fake", "keyed"]  # fixtures used here

CHAT = "/api/v1/chat/completions"
BASE_URL = "http://llm-internal.corp.example:8443/v1"
KEY = "sk-proj-Q7wX2vB9kL4mN8pR3tY6"


def variants(key: str, base_url: str) -> dict[str, str]:
    parts = urlsplit(base_url)
    host_port = f"{parts.hostname}:{parts.port}"
    return {
        "key": key,
        "upper-case key": key.upper(),
        "lower-case key": key.lower(),
        "url-encoded key": quote(key, safe=""),
        "form-encoded key": quote_plus("Bearer " + key),
        "key prefix": key[: len(key) // 2],
        "key suffix": key[len(key) // 2 :],
        "masked key": key[:8] + "****" + key[-4:],
        "bare host:port": host_port,
        "upper-case host": parts.hostname.upper() if parts.hostname else "",
        "url": base_url + "/chat/completions",
        "ipv4": "10.20.30.40",
        "ipv4:port": "10.20.30.40:8000",
        "loopback": "127.0.0.1:11434",
        "ipv6": "[fd00::1]:8080",
    }


# What must not survive of each variant: the variant itself, and for keys any 10 characters of it
# in a row (the scrubber redacts from 8; 10 keeps the gateway's own words, e.g. "upstream", apart).
def leaked(text: str, what: str, value: str) -> bool:
    if "key" in what and "masked" not in what:
        raw = value.replace("%2D", "-").replace("Bearer+", "")
        return any(raw[i : i + 10].lower() in text.lower() for i in range(len(raw) - 9))
    return value.lower() in text.lower()


@pytest.mark.unit
@pytest.mark.parametrize("what", list(variants(KEY, BASE_URL)))
def test_each_variant_is_scrubbed(what: str) -> None:
    value = variants(KEY, BASE_URL)[what]
    text = f"Incorrect API key provided: {value} (request to {value} refused)."
    cleaned = scrub(text, key=KEY, base_url=BASE_URL)
    assert not leaked(cleaned, what, value), cleaned
    assert cleaned.startswith("Incorrect API key provided:")  # the useful part stays


@pytest.mark.unit
def test_plain_error_text_is_left_alone() -> None:
    text = "This model's maximum context length is 8192 tokens; you asked for 9000 (model gpt-4o-mini)."
    assert scrub(text, key=KEY, base_url=BASE_URL) == text


def test_variants_reach_no_client_log_or_record(
    keyed: tuple[str, str], fake: FakeOpenAI, clean_aws: dict[str, str]
) -> None:
    from handler.wiring import create_app

    key, _ = keyed
    echoed = variants(UPSTREAM_KEY, fake.base_url)
    text = "The server refused the request: " + " | ".join(echoed.values())
    body = {"model": "sec", "messages": [{"role": "user", "content": "hi"}]}
    auth = {"Authorization": f"Bearer {key}"}
    with captured_logs() as logs, TestClient(create_app(), raise_server_exceptions=False) as client:
        fake.default = Reply(status=401, error=text)
        refused = client.post(CHAT, json=body, headers=auth)
        fake.default = Reply(text="partial", stream_error=text)
        mid_stream = client.post(CHAT, json=body, headers=auth)
    assert refused.status_code == 502 and mid_stream.status_code == 502, (refused.text, mid_stream.text)
    assert "server refused the request" in refused.text  # the error's own words still reach the client
    places = {
        "error bodies": refused.text + mid_stream.text,
        "logs": logs.text,
        "stored records": stored_everything(clean_aws),
    }
    for where, found in places.items():
        for what, value in echoed.items():
            assert not leaked(found, what, value), f"{what} ({value}) found in {where}"
