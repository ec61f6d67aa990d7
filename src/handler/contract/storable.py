"""What the store can keep, checked before a body is accepted: what is accepted is stored.

Records, feedback and outcomes are stored (and queued for retry) as JSON written by orjson, which
refuses a lone UTF-16 surrogate (`"\\ud800"` in the JSON: valid JSON, but no UTF-8 encodes it), an
integer outside 64 bits, and values nested deeper than 255 levels; a NaN or an infinity (JSON
`NaN`, `1e400`) would be written as `null` and read back as something else. A body holding one of
those used to be answered and its record lost; now it is a 400 naming the field, up front.

Every string (dict keys too) is checked, and every free-form value (`response_format`,
`system_prompt_args`, `metadata`, tool `parameters`, feedback `details`) is bounded to `MAX_DEPTH`
levels below the body, far under orjson's limit whatever a record wraps around it. The cost is one
`orjson.dumps` of the body and a walk of its free-form values (benchmarks/storable.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

import orjson
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


def _walk(value: Any, depth: int, strings: bool = True) -> None:
    """Raise `_Unstorable` at the first value the store cannot keep; `strings=False` skips the
    string checks (when orjson has already written every string)."""
    kind = type(value)
    if kind is str:
        if strings:
            _text(value)
    elif kind is dict or kind is list:
        if depth >= MAX_DEPTH:
            raise _Unstorable(f"nested deeper than {MAX_DEPTH} levels, which cannot be stored")
        items = value.items() if kind is dict else enumerate(value)
        for key, item in items:
            try:
                if strings and type(key) is str:
                    _text(key)
                _walk(item, depth + 1, strings)
            except _Unstorable as bad:
                bad.path.append(key)
                raise
    elif kind is int:
        if not _INT_MIN <= value <= _INT_MAX:
            raise _Unstorable("is an integer outside 64 bits, which cannot be stored")
    elif kind is float and not math.isfinite(value):
        raise _Unstorable("is NaN or infinite, which cannot be stored")


def _printable(step: str | int) -> str | int:
    """A path step the error body itself can carry: a bad key's surrogates as `\\udfff` text."""
    if isinstance(step, str) and not step.isascii() and _SURROGATE.search(step):
        return step.encode("utf-8", "backslashreplace").decode("utf-8")
    return step


def check_storable(data: Any, title: str, free: Iterable[tuple[tuple[str | int, ...], Any]] = ()) -> None:
    """Raise a pydantic ValidationError located at the first value of `data` (a parsed JSON body)
    that the store could not keep; the API turns it into a 400 naming that field.

    The hot path is one `orjson.dumps` of the body (C speed: it fails on exactly the strings and
    integers the store would fail on) plus a walk of the `free` values only (`(path, value)`: the
    free-form fields, where a NaN or a deep nesting is possible; typed fields refuse those
    themselves). Only a body orjson refuses is walked whole, to name the field.
    """
    try:
        try:
            orjson.dumps(data)
        except (TypeError, orjson.JSONEncodeError):
            _walk(data, 0)
            raise _Unstorable("cannot be stored") from None  # not reached for a parsed JSON body
        for path, value in free:
            try:
                _walk(value, len(path), strings=False)
            except _Unstorable as bad:
                bad.path.extend(reversed(path))
                raise
    except _Unstorable as bad:
        steps = [_printable(step) for step in reversed(bad.path)]
        if len(steps) > 12:  # the path of a 900-level nesting is no help: its start is
            steps = [*steps[:12], "..."]
        error = PydanticCustomError("unstorable", "{reason}", {"reason": bad.reason})
        detail = InitErrorDetails(type=error, loc=tuple(steps), input=None)
        raise ValidationError.from_exception_data(title, [detail]) from None
