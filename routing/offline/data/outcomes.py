"""Many-model outcome tables: for every prompt of a source, how well each model that answered it
did, on one scale in [0, 1] (1 best).

- judge scores: min–max scaled over the source's scores (a 1–10 grade of 10 → 1);
- golden labels: 1 correct, 0 incorrect;
- battles: a model's mean result over its battles on the prompt (win 1, tie ½, loss 0).

Unlike battles, which only compare the models that answered the same prompt, a table keeps what
every model did, so a router can learn how hard a prompt is and how much a stronger model gains
on it for any pair, including pairs no source saw together.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from routing.offline.data.schema import Battle, JudgeScore, PreferenceRow
from routing.routers.model_aliases import canonical_model_name

BATTLE_RESULT = {"model_a": (1.0, 0.0), "model_b": (0.0, 1.0), "tie": (0.5, 0.5), "tie (bothbad)": (0.5, 0.5)}


@dataclass(frozen=True)
class OutcomeTable:
    """``values[i, j]``: model ``models[j]``'s outcome on ``prompts[i]``; NaN where it gave none."""

    source: str
    prompts: list[str]
    models: list[str]
    values: np.ndarray

    def column(self, model: str) -> np.ndarray:
        return self.values[:, self.models.index(model)]

    def mean_outcome(self) -> np.ndarray:
        """Per model, its mean outcome over the prompts it answered."""
        return np.nanmean(self.values, axis=0)


def outcome_tables(rows: Iterable[PreferenceRow], default_source: str) -> list[OutcomeTable]:
    """One table per source (a row's ``source``, else ``default_source``), prompts and models in
    first-seen and sorted order. A prompt is keyed by its ``prompt_id`` where it has one."""
    by_source: dict[str, list[PreferenceRow]] = defaultdict(list)
    for row in rows:
        by_source[row.source or default_source].append(row)
    return [_table(source, group) for source, group in by_source.items()]


def _table(source: str, rows: Sequence[PreferenceRow]) -> OutcomeTable:
    scores = [row.score for row in rows if isinstance(row, JudgeScore)]
    low, high = (min(scores), max(scores)) if scores else (0.0, 1.0)
    span = high - low or 1.0
    results: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    texts: dict[str, str] = {}
    for row in rows:
        if isinstance(row, Battle):
            texts.setdefault(row.prompt, row.prompt)
            a, b = BATTLE_RESULT[row.winner]
            results[row.prompt][canonical_model_name(row.model_a)].append(a)
            results[row.prompt][canonical_model_name(row.model_b)].append(b)
            continue
        key = row.prompt_id or row.prompt
        texts.setdefault(key, row.prompt)
        value = (row.score - low) / span if isinstance(row, JudgeScore) else float(row.correct)
        # A repeated (prompt, model) row replaces the earlier one, as it does for battles.
        results[key][canonical_model_name(row.model)] = [value]
    models = sorted({model for by_model in results.values() for model in by_model})
    column = {model: j for j, model in enumerate(models)}
    values = np.full((len(results), len(models)), np.nan)
    for i, by_model in enumerate(results.values()):
        for model, outcomes in by_model.items():
            values[i, column[model]] = float(np.mean(outcomes))
    return OutcomeTable(source, [texts[key] for key in results], models, values)
