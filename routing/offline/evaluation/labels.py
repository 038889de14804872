"""Your own labelled prompts as benchmarks, so a retrained router can be compared with the
current one on held-out traffic (``routellm-serve evaluate --labels labels/test``).

Per prompt, each model's quality comes from the labels:

- battles: the winner scores 1 and the loser 0; a ``tie`` gives both 1, a ``tie (bothbad)`` both 0
  (several battles of one prompt are averaged);
- judge scores: the judge's grade; golden labels: 1 if correct, else 0.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from routing.offline.data.files import DataFileError, read_preference_data
from routing.offline.data.schema import Battle, JudgeScore, PreferenceRow
from routing.offline.evaluation.benchmark import Benchmark
from routing.routers.model_aliases import canonical_model_name

BATTLE_QUALITY = {"model_a": (1.0, 0.0), "model_b": (0.0, 1.0), "tie": (1.0, 1.0), "tie (bothbad)": (0.0, 0.0)}


def labels_benchmarks(ref: Path | str, strong: str, weak: str) -> list[Benchmark]:
    """One benchmark per kind of label in ``ref`` (``<name>-pairwise`` from battles,
    ``<name>-graded`` from judge scores or golden labels), over the prompts labelled for both
    ``strong`` and ``weak``."""
    rows = read_preference_data(ref)
    pair = canonical_model_name(strong), canonical_model_name(weak)
    name = Path(ref).name
    found = {
        f"{name}-pairwise": _from_battles([r for r in rows if isinstance(r, Battle)], pair),
        f"{name}-graded": _from_grades([r for r in rows if not isinstance(r, Battle)], pair),
    }
    benchmarks = [
        Benchmark(label, ids=list(q), prompts=list(q), quality={strong: _column(q, 0), weak: _column(q, 1)})
        for label, q in found.items()
        if q
    ]
    if not benchmarks:
        models = sorted({m for r in rows for m in _models(r)})
        raise DataFileError(
            f"{ref}: no prompt is labelled for both '{strong}' and '{weak}' (models in the labels: "
            f"{', '.join(models)}); name them with --strong and --weak"
        )
    return benchmarks


def _models(row: PreferenceRow) -> tuple[str, ...]:
    names = (row.model_a, row.model_b) if isinstance(row, Battle) else (row.model,)
    return tuple(canonical_model_name(n) for n in names)


def _from_battles(battles: list[Battle], pair: tuple[str, str]) -> dict[str, tuple[float, float]]:
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for b in battles:
        a, b_model = canonical_model_name(b.model_a), canonical_model_name(b.model_b)
        if {a, b_model} != set(pair):
            continue
        quality_a, quality_b = BATTLE_QUALITY[b.winner]
        strong_q, weak_q = (quality_a, quality_b) if a == pair[0] else (quality_b, quality_a)
        total = sums[b.prompt]
        total[0] += strong_q
        total[1] += weak_q
        total[2] += 1
    return {prompt: (s / n, w / n) for prompt, (s, w, n) in sums.items()}


def _from_grades(rows: list[PreferenceRow], pair: tuple[str, str]) -> dict[str, tuple[float, float]]:
    by_prompt: dict[str, dict[str, tuple[str, float]]] = defaultdict(dict)
    for row in rows:
        model = canonical_model_name(row.model)  # type: ignore[union-attr]
        if model in pair:
            value = row.score if isinstance(row, JudgeScore) else float(row.correct)  # type: ignore[union-attr]
            by_prompt[row.prompt_id or row.prompt][model] = (row.prompt, value)  # type: ignore[union-attr]
    return {
        graded[pair[0]][0]: (graded[pair[0]][1], graded[pair[1]][1])
        for graded in by_prompt.values()
        if pair[0] in graded and pair[1] in graded
    }


def _column(quality: dict[str, tuple[float, float]], side: int) -> np.ndarray:
    return np.array([q[side] for q in quality.values()])
