"""How the judge's verdicts are read (what it is asked: :class:`routing.judge_settings.JudgePrompts`).

Pairwise grading asks twice, with the answers in both orders: a judge that prefers whichever
answer comes first then gives a tie instead of a false win.
"""

from __future__ import annotations

import re
from typing import Literal

_RATING = re.compile(r"Rating:\s*\[\[(\d+(?:\.\d+)?)\]\]")
_CHOICE = re.compile(r"\[\[([ABC])\]\]")

Choice = Literal["A", "B", "C"]
Outcome = Literal["strong", "weak", "tie"]


def read_rating(text: str) -> float | None:
    """The judge's 1–10 rating (its last one), or None when it gave none in range."""
    found = _RATING.findall(text)
    if not found:
        return None
    rating = float(found[-1])
    return rating if 1 <= rating <= 10 else None


def read_choice(text: str) -> Choice | None:
    found = _CHOICE.findall(text)
    return found[-1] if found else None  # type: ignore[return-value]


def pairwise_outcome(strong_first: Choice, weak_first: Choice) -> Outcome:
    """The winner when both orders agree; a tie otherwise."""
    first = {"A": "strong", "B": "weak", "C": "tie"}[strong_first]
    second = {"A": "weak", "B": "strong", "C": "tie"}[weak_first]
    return first if first == second else "tie"  # type: ignore[return-value]
