"""The learner's own labels as it reads them: per prompt, the quality of the pair's two answers
(:func:`routing.offline.evaluation.labels.labels_benchmarks`), of the kind its judge grades."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from routing.judge_settings import Grading
from routing.offline.evaluation.labels import labels_benchmarks
from routing.offline.learning.families import Labelled


def read_labelled(
    directory: Path, strong: str, weak: str, grading: Grading, embed: Callable[[list[str]], np.ndarray | None]
) -> Labelled | None:
    """The labels in ``directory`` with each prompt's embedding (a zero column where the router
    reads none: prompt length needs none); None with fewer than two."""
    if not directory.is_dir():
        return None
    suffix = "-pairwise" if grading == "pairwise" else "-graded"
    try:
        found = next((b for b in labels_benchmarks(directory, strong, weak) if b.name.endswith(suffix)), None)
    except ValueError:
        return None
    if found is None or len(found.prompts) < 2:
        return None
    embeddings = embed(found.prompts)
    if embeddings is None:
        embeddings = np.zeros((len(found.prompts), 1), np.float32)
    return Labelled(found.prompts, embeddings, found.quality[strong], found.quality[weak])


def count_labelled(directory: Path, strong: str, weak: str) -> int:
    """The prompts labelled in ``directory``, of whichever kind has the most."""
    if not directory.is_dir():
        return 0
    try:
        return max(len(b.prompts) for b in labels_benchmarks(directory, strong, weak))
    except ValueError:
        return 0
