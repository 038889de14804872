"""Converters into battles, the form every preference-trained router learns from."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from itertools import combinations

from routing.data.schema import Battle, JudgeScore


def scores_to_battles(scores: Iterable[JudgeScore]) -> list[Battle]:
    """Every pair of models graded on the same prompt becomes one battle.

    The higher score wins; equal scores are a ``tie``. Models are ordered by name inside a
    battle, so the output does not depend on the input's row order.
    """
    by_prompt: dict[str, list[JudgeScore]] = defaultdict(list)
    for row in scores:
        by_prompt[row.prompt_id].append(row)
    battles = []
    for rows in by_prompt.values():
        for a, b in combinations(sorted(rows, key=lambda r: r.model), 2):
            if a.model == b.model:
                continue
            winner = "model_a" if a.score > b.score else "model_b" if b.score > a.score else "tie"
            battles.append(Battle(prompt=a.prompt, model_a=a.model, model_b=b.model, winner=winner, source=a.source))
    return battles
