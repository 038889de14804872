"""The paper's baseline: a uniform random score, independent of the prompt."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from routing.routers.checkpoint import load_manifest
from routing.routers.kind import ScoringPair
from routing.routers.kinds import RandomRouterConfig


class RandomRouter:
    def __init__(self, directory: Path, seed: int | None = None) -> None:
        manifest = load_manifest(directory, "random")
        self._rng = np.random.default_rng(manifest.params["seed"] if seed is None else seed)

    def score(self, prompts: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        return self._rng.random(len(prompts))


def router_for(directory: Path, config: RandomRouterConfig, pair: ScoringPair) -> RandomRouter:
    return RandomRouter(directory, config.seed)
