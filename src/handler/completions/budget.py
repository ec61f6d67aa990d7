"""What an answer may grow to, enforced by the gateway itself: `max_tokens` per choice, and
`MAX_ANSWER_BYTES` for the whole answer.

An upstream may ignore `max_tokens` or never stop sending (issue #11, C10): the answer is cut where
the budget ends, the choice finishes with `finish_reason: "length"` (as OpenAI reports a cut answer),
and the rest of the upstream's stream is not read. Tokens are counted with the providers' one
counter (`providers.tokens.count_tokens`).

The hot path is two additions and two comparisons per delta: a token is at least one character and
a character at most four UTF-8 bytes, so nothing is counted until the characters seen could exceed
a budget; only then is the choice's text counted exactly, and the next exact count waits until the
characters added since could exceed the budget again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from handler.providers.tokens import count_tokens


class _Choice(Protocol):
    @property
    def content(self) -> str: ...


class Budget:
    def __init__(self, max_tokens: int | None, n: int, max_bytes: int) -> None:
        self.max_tokens = max_tokens
        self.max_bytes = max_bytes
        self.cut = [False] * n  # choices whose budget ran out: nothing more is taken for them
        self._chars = [0] * n
        # Characters a choice may reach before its tokens must be counted (None: no token limit).
        self._token_check = [float("inf") if max_tokens is None else float(max_tokens)] * n
        self._total = 0  # characters (and tool-call argument characters) over every choice
        self._byte_check = max_bytes // 4
        self._extra_bytes = 0  # tool-call arguments, which are not in any choice's text

    def fits(self, index: int, text: str) -> bool:
        """Whether `text` certainly fits (the hot path): only counters, nothing is counted."""
        if self.cut[index]:
            return False
        size = len(text)
        self._chars[index] += size
        self._total += size
        return self._chars[index] <= self._token_check[index] and self._total <= self._byte_check

    @property
    def exhausted(self) -> bool:
        return all(self.cut)

    def take(self, index: int, text: str, choices: Sequence[_Choice]) -> str | None:
        """After `fits` said no: None if `text` does fit after all (counted exactly), else the part
        of it that does ("" for none), the choices that ran out marked `cut`."""
        if self.cut[index]:
            return ""
        keep = text
        before = choices[index].content
        if self._chars[index] > self._token_check[index] and self.max_tokens is not None:
            keep = self._within_tokens(index, before, text)
        if self._total > self._byte_check:
            keep = self._within_bytes(keep, choices)
        return None if keep is text and not self.cut[index] else keep

    def add_bytes(self, size: int, choices: Sequence[_Choice]) -> bool:
        """Count `size` bytes that are not text (tool-call arguments); False when they do not fit,
        and then every choice is cut."""
        self._extra_bytes += size
        self._total += size
        if self._total <= self._byte_check:
            return True
        used = self._extra_bytes + sum(len(c.content.encode()) for c in choices)
        if used <= self.max_bytes:
            self._byte_check = self._total + (self.max_bytes - used) // 4
            return True
        self.cut = [True] * len(self.cut)
        return False

    # --- the exact counts ----------------------------------------------------------------------

    def _within_tokens(self, index: int, before: str, text: str) -> str:
        limit = self.max_tokens
        assert limit is not None
        counted = count_tokens(before + text)
        if counted <= limit:
            # Each character added from here adds at most one token.
            self._token_check[index] = self._chars[index] + (limit - counted)
            return text
        low, high = 0, len(text)  # the longest prefix of `text` that keeps the choice within
        while low < high:
            middle = (low + high + 1) // 2
            if count_tokens(before + text[:middle]) <= limit:
                low = middle
            else:
                high = middle - 1
        self.cut[index] = True
        return text[:low].rstrip()  # whitespace after the last token is the next token's start

    def _within_bytes(self, text: str, choices: Sequence[_Choice]) -> str:
        used = self._extra_bytes + sum(len(c.content.encode()) for c in choices)
        room = self.max_bytes - used
        data = text.encode()
        if len(data) <= room:
            self._byte_check = self._total + (room - len(data)) // 4
            return text
        self.cut = [True] * len(self.cut)  # the whole answer is as large as it may be
        return data[: max(room, 0)].decode("utf-8", "ignore")
