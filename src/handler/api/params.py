"""Reading ids from the path: a malformed one is a 400 that names the parameter, before any lookup.

Path parameters are declared as `str` and read here rather than typed `uuid.UUID`, so that the
message is this API's own (`completion_id: 'x' is not a valid UUID`) and the id is normalized
(lowercase, hyphenated) the way it is stored.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Path

from handler.errors import InvalidRequest

# A path id the OpenAPI schema declares as a UUID (what `uuid_param` enforces), so that clients and
# schemathesis know what the server accepts (issue #11 D14).
UUIDPath = Annotated[str, Path(json_schema_extra={"format": "uuid"})]


def uuid_param(value: str, param: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidRequest(f"{param}: {value!r} is not a valid UUID", param=param) from None
