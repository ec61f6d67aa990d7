"""What the store can keep, checked before a body is accepted: what is accepted is stored.

Records, feedback and outcomes are stored (and queued for retry) as JSON written by orjson, which
refuses a lone UTF-16 surrogate (`"\\ud800"` in the JSON: valid JSON, but no UTF-8 encodes it), an
integer outside 64 bits, and values nested deeper than 255 levels; a NaN or an infinity (JSON
`NaN`, `1e400`) would be written as `null` and read back as something else. A body holding one of
those used to be answered and its record lost; now it is a 400 naming the field, up front.

Every string (dict keys too) is checked, and every free-form value (`response_format`,
`system_prompt_args`, `metadata`, tool `parameters`, feedback `details`) is bounded to `MAX_DEPTH`
levels below the body, far under orjson's limit whatever a record wraps around it. The walk is one
pass over the parsed body, with no allocation unless something is wrong (benchmarks/bench_storable.py).
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

MAX_DEPTH = 64  # levels of nesting below the body (orjson writes 255; a record adds a few)
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # what orjson writes
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Unstorable(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.path: list[str | int] = []  # innermost first, while the walk unwinds


def _text(value: str) -> None:
    if not value.isascii() and _SURROGATE.search(value):  # isascii() is O(1) in CPython
        raise _Unstorable("holds a lone UTF-16 surrogate (e.g. \\ud800), which cannot be stored")


def _walk(value: Any, depth: int) -> None:
    kind = type(value)
    if kind is str:
        _text(value)
    elif kind is dict:
        if depth >= MAX_DEPTH:
            raise _Unstorable(f"nested deeper than {MAX_DEPTH} levels, which cannot be stored")
        for key, item in value.items():
            try:
                if type(key) is str:
                    _text(key)
                _walk(item, depth + 1)
            except _Unstorable as bad:
                bad.path.append(key)
                raise
    elif kind is list:
        if depth >= MAX_DEPTH:
            raise _Unstorable(f"nested deeper than {MAX_DEPTH} levels, which cannot be stored")
        for index, item in enumerate(value):
            try:
                _walk(item, depth + 1)
            except _Unstorable as bad:
                bad.path.append(index)
                raise
    elif kind is int:
        if not _INT_MIN <= value <= _INT_MAX:
            raise _Unstorable("is an integer outside 64 bits, which cannot be stored")
    elif kind is float and not math.isfinite(value):
        raise _Unstorable("is NaN or infinite, which cannot be stored")


def check_storable(data: Any, title: str) -> None:
    """Raise a pydantic ValidationError located at the first value of `data` (a parsed JSON body)
    that the store could not keep; the API turns it into a 400 naming that field."""
    try:
        _walk(data, 0)
    except _Unstorable as bad:
        path = bad.path[::-1]
        if len(path) > 12:  # the path of a 900-level nesting is no help: its start is
            path = [*path[:12], "..."]
        error = PydanticCustomError("unstorable", "{reason}", {"reason": bad.reason})
        detail = InitErrorDetails(type=error, loc=tuple(path), input=None)
        raise ValidationError.from_exception_data(title, [detail]) from None
