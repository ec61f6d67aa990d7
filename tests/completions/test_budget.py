"""The answer budget (completions/budget.py) on its own: exact at the boundary, whatever the split."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from handler.completions.budget import Budget
from handler.providers.tokens import count_tokens

pytestmark = pytest.mark.unit


@dataclass
class Choice:
    parts: list[str] = field(default_factory=list)

    @property
    def content(self) -> str:
        return "".join(self.parts)


def run(deltas: list[str], max_tokens: int | None, max_bytes: int = 1 << 20) -> tuple[str, bool]:
    choices = [Choice()]
    budget = Budget(max_tokens, 1, max_bytes)
    for delta in deltas:
        if budget.fits(0, delta):
            choices[0].parts.append(delta)
            continue
        keep = budget.take(0, delta, choices)
        choices[0].parts.append(delta if keep is None else keep)
        if budget.exhausted:
            break
    return choices[0].content, budget.cut[0]


@pytest.mark.parametrize(
    ("deltas", "limit", "expected", "cut"),
    [
        (["hel", "lo", " wor", "ld"], 2, "hello world", False),  # pieces of words are not tokens
        (["hel", "lo", " wor", "ld"], 1, "hello", True),
        (["one two three four"], 2, "one two", True),  # cut inside one delta
        ([" a"] * 50, 50, " a" * 50, False),
        ([" a"] * 51, 50, " a" * 50, True),
    ],
)
def test_max_tokens_cuts_exactly(deltas: list[str], limit: int, expected: str, cut: bool) -> None:
    assert run(deltas, limit) == (expected, cut)


def test_no_limit_takes_everything() -> None:
    assert run(["word "] * 1000, None) == ("word " * 1000, False)


def test_bytes_cut_on_a_character_boundary() -> None:
    text, cut = run(["é" * 100] * 10, None, max_bytes=1001)
    assert cut and len(text.encode()) <= 1001 and text == "é" * 500


def test_a_long_answer_within_budget_is_counted_a_few_times_only(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    import handler.completions.budget as module

    def counting(text: str) -> int:
        calls.append(len(text))
        return count_tokens(text)

    monkeypatch.setattr(module, "count_tokens", counting)
    run([" word"] * 4000, 4096)
    assert len(calls) <= 20  # not once per delta
