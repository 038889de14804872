"""The paper's baseline: a uniform random score, independent of the prompt."""

from __future__ import annotations

import numpy as np

from routing.config import RandomRouterConfig


class RandomRouter:
    def __init__(self, config: RandomRouterConfig) -> None:
        self._rng = np.random.default_rng(config.seed)

    def score(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        return self._rng.random(len(prompts))
