"""Encoding of AWS event-stream messages (`application/vnd.amazon.eventstream`), for fake Bedrock.

A message is: prelude (total length, headers length, CRC32 of those 8 bytes), headers, payload,
and a CRC32 of everything before it. Each header is a 1-byte name length, the name, a type byte
(7 = string) and a 2-byte value length with the value. botocore's real parser decodes these.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

_STRING = 7


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    encoded = b"".join(
        struct.pack("!B", len(n := name.encode()))
        + n
        + struct.pack("!BH", _STRING, len(v := value.encode()))
        + v
        for name, value in headers.items()
    )
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded))
    prelude += struct.pack("!I", zlib.crc32(prelude))
    body = prelude + encoded + payload
    return body + struct.pack("!I", zlib.crc32(body))


def event(event_type: str, payload: dict[str, Any]) -> bytes:
    """One `:message-type: event` message with a JSON payload, as Bedrock sends it."""
    return encode_message(
        {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"},
        json.dumps(payload, separators=(",", ":")).encode(),
    )


def exception(exception_type: str, message: str) -> bytes:
    """An in-stream exception (e.g. `modelStreamErrorException`), which botocore raises as an error."""
    return encode_message(
        {
            ":exception-type": exception_type,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        json.dumps({"message": message}).encode(),
    )


def corrupt(message: bytes) -> bytes:
    """The same message with a broken trailing CRC: botocore refuses it (ChecksumMismatch)."""
    return message[:-4] + struct.pack("!I", (struct.unpack("!I", message[-4:])[0] ^ 0xFFFFFFFF))
