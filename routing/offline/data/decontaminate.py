"""The paper's embedding rule: a training prompt whose cosine similarity to any evaluation
prompt is at least 0.95 is dropped."""

from __future__ import annotations

import numpy as np

THRESHOLD = 0.95


def near_duplicate_mask(
    train: np.ndarray, evaluation: np.ndarray, threshold: float = THRESHOLD, block: int = 4096
) -> np.ndarray:
    """True for each (L2-normalised) training row within ``threshold`` cosine of an evaluation row."""
    mask = np.zeros(len(train), dtype=bool)
    for start in range(0, len(evaluation), block):
        mask |= (train @ evaluation[start : start + block].T).max(axis=1, initial=-1.0) >= threshold
    return mask
