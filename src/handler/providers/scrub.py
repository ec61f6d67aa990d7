"""Upstream error text, cleaned of what must never reach a client, a log line or a record.

Upstreams echo what they were sent: the key (whole, in another case, url-encoded, cut to a prefix
or masked in the middle as `sk-proj-****abcd`), their own URL, `host:port`, an IP address. Exact
matching missed all but the first (issue #11, C13), so this redacts:

- any run of characters that, url-decoded and lower-cased, shares `_FRAGMENT` characters in a row
  with the key (a partial or altered key), and anything that looks like a key whatever it belongs
  to (`sk-...`, `Bearer ...`, long mixed letter-and-digit tokens);
- URLs, the upstream's host name in any case with or without its port, any `host:port`, IPv4
  and bracketed IPv6 addresses.

It runs only on the error path (an upstream's error body or mid-stream error), never per token.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus, urlsplit

# Characters in a row shared with the key that make a token a piece of it. Long enough that
# ordinary words do not match a random key, short enough that a key cut in half still does.
_FRAGMENT = 8
_TOKEN = re.compile(r"[A-Za-z0-9%+/=_.\-~*]{" + str(_FRAGMENT) + ",}")
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"<>)\]}]+")
_BEARER = re.compile(r"(?i)\bbearer\s+\S+")
_KEY_LIKE = re.compile(r"(?i)\b(?:sk|pk|rk|api|key)[-_][A-Za-z0-9_\-*]{6,}")
_LONG_TOKEN = re.compile(r"\b(?=[A-Za-z0-9_\-]*\d)(?=[A-Za-z0-9_\-]*[A-Za-z])[A-Za-z0-9_\-]{32,}\b")
_IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\d.])")
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]{2,}\](?::\d{1,5})?")
_HOST_PORT = re.compile(
    r"(?i)\b(?:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?:\d{2,5}\b"
)

REDACTED = "***"


def scrub(text: str, *, key: str | None = None, base_url: str | None = None) -> str:
    """`text` with the key (and pieces or altered forms of it), hosts and addresses redacted."""
    if not text:
        return text
    if key:
        text = _without_key(text, key)
    text = _URL.sub("<url>", text)
    host = urlsplit(base_url).hostname if base_url else None
    if host:
        text = re.sub(rf"(?i){re.escape(host)}(?::\d{{1,5}})?", "<host>", text)
    text = _IPV6.sub("<host>", text)
    text = _IPV4.sub("<host>", text)
    text = _HOST_PORT.sub("<host>", text)
    text = _BEARER.sub(f"Bearer {REDACTED}", text)
    text = _KEY_LIKE.sub(REDACTED, text)
    return _LONG_TOKEN.sub(REDACTED, text)


def _without_key(text: str, key: str) -> str:
    lowered = key.lower()
    if len(lowered) < _FRAGMENT:  # too short to look for pieces of: the whole key, in any case
        return re.sub(re.escape(key), REDACTED, text, flags=re.IGNORECASE)
    pieces = {lowered[i : i + _FRAGMENT] for i in range(len(lowered) - _FRAGMENT + 1)}

    def redact(match: re.Match[str]) -> str:
        token = match.group(0)
        for form in {token.lower(), unquote_plus(token).lower()}:
            if any(form[i : i + _FRAGMENT] in pieces for i in range(len(form) - _FRAGMENT + 1)):
                return REDACTED
        return token

    return _TOKEN.sub(redact, text)
