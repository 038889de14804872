"""A router kind from outside the package, registered through the registry alone: it scores a
prompt by its length. Importing this module registers it (as unpickling its config does in a
Serve replica)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from routing.routers.checkpoint import Manifest, load_manifest, save
from routing.routers.kind import RouterKind, RouterSettings, ScoringPair
from routing.routers.kinds import register


class ToyRouterConfig(RouterSettings):
    type: Literal["toy"]


class LengthRouter:
    def __init__(self, per_char: float) -> None:
        self.per_char = per_char

    def score(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        return np.array([min(1.0, len(p) * self.per_char) for p in prompts])


def load(directory: Path, config: ToyRouterConfig, pair: ScoringPair) -> LengthRouter:
    return LengthRouter(float(load_manifest(directory, "toy").params["per_char"]))


def make_checkpoint(directory: Path, per_char: float = 0.01) -> Path:
    save(directory, Manifest(router="toy", params={"per_char": per_char}))
    return directory


TOY = register(RouterKind(name="toy", config=ToyRouterConfig, load=load, needs_embeddings=False))
