"""A cheap, deterministic token count for providers that report none (echo) and for limits.

Words and punctuation each count as one token, which tracks BPE tokenizers closely enough for
budgets and usage reports without shipping a vocabulary.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\s*(?:\w+|[^\w\s])")


def split_tokens(text: str) -> list[str]:
    """Pieces that concatenate back to `text` (leading whitespace rides on each piece)."""
    pieces = _TOKEN.findall(text)
    consumed = sum(len(p) for p in pieces)
    if consumed < len(text):  # trailing whitespace
        if pieces:
            pieces[-1] += text[consumed:]
        else:
            pieces = [text]
    return pieces


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))
