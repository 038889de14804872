"""Converters into battles, the form every preference-trained router learns from.

Rules (one battle per pair of models that answered the same prompt; models ordered by name):

- judge scores: the higher score wins; equal scores are a ``tie``;
- golden labels: a correct answer beats an incorrect one; both correct is a ``tie``; both
  incorrect is a ``tie (bothbad)``.

Model names are canonicalised (lower case, no ``organisation/`` prefix, then the alias table of
:mod:`routing.routers.model_aliases`) so that the same model is one player across sources:
``mistralai/Mixtral-8x7B-Instruct-v0.1`` → ``mixtral-8x7b-instruct-v0.1``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from itertools import combinations
from typing import TypeVar

from routing.offline.data.schema import Battle, GoldenLabel, JudgeScore, PreferenceRow, Winner
from routing.routers.model_aliases import canonical_model_name

Graded = TypeVar("Graded", JudgeScore, GoldenLabel)


def _by_prompt(rows: Iterable[Graded]) -> list[list[Graded]]:
    """Rows grouped by prompt, one per model (a repeated (prompt, model) row replaces the earlier one)."""
    groups: dict[str, dict[str, Graded]] = defaultdict(dict)
    for row in rows:
        groups[row.prompt_id or row.prompt][canonical_model_name(row.model)] = row
    return [[group[m] for m in sorted(group)] for group in groups.values()]


def _battle(a: Graded, b: Graded, winner: Winner) -> Battle:
    return Battle(
        prompt=a.prompt,
        model_a=canonical_model_name(a.model),
        model_b=canonical_model_name(b.model),
        winner=winner,
        source=a.source,
    )


def scores_to_battles(scores: Iterable[JudgeScore]) -> list[Battle]:
    battles = []
    for group in _by_prompt(scores):
        for a, b in combinations(group, 2):
            battles.append(_battle(a, b, "model_a" if a.score > b.score else "model_b" if b.score > a.score else "tie"))
    return battles


def golden_to_battles(labels: Iterable[GoldenLabel]) -> list[Battle]:
    battles = []
    for group in _by_prompt(labels):
        for a, b in combinations(group, 2):
            if a.correct != b.correct:
                winner: Winner = "model_a" if a.correct else "model_b"
            else:
                winner = "tie" if a.correct else "tie (bothbad)"
            battles.append(_battle(a, b, winner))
    return battles


def to_battles(rows: Iterable[PreferenceRow]) -> list[Battle]:
    """Battles from any mix of battles, judge scores and golden labels."""
    battles: list[Battle] = []
    scores: list[JudgeScore] = []
    golden: list[GoldenLabel] = []
    for row in rows:
        if isinstance(row, Battle):
            a, b = canonical_model_name(row.model_a), canonical_model_name(row.model_b)
            battles.append(
                row if (a, b) == (row.model_a, row.model_b) else row.model_copy(update={"model_a": a, "model_b": b})
            )
        elif isinstance(row, JudgeScore):
            scores.append(row)
        else:
            golden.append(row)
    return battles + scores_to_battles(scores) + golden_to_battles(golden)
