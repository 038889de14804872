"""What every router's training shares: the held-out prompt split and the data record."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from routing.data.schema import Battle
from routing.routers.checkpoint import Manifest

Log = Callable[[str], None]
Embed = Callable[[list[str]], np.ndarray]


@dataclass
class Trained:
    """A trained router, ready for :func:`routing.routers.checkpoint.save`."""

    manifest: Manifest
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)


def held_out_prompts(prompts: Sequence[str], fraction: float, seed: int) -> set[str]:
    """A seeded random share of the distinct prompts, held out for validation: no held-out prompt
    is trained on, so held-out figures measure generalisation to unseen prompts."""
    distinct = sorted(set(prompts))
    order = np.random.default_rng(seed).permutation(len(distinct))
    return {distinct[i] for i in order[: int(round(fraction * len(distinct)))]}


def is_decisive(battle: Battle) -> bool:
    return battle.winner in ("model_a", "model_b") and battle.model_a != battle.model_b


def decisive(battles: Sequence[Battle]) -> list[Battle]:
    return [b for b in battles if is_decisive(b)]


def weights_of(battles: Sequence[Battle], weights: Sequence[float] | None) -> list[float]:
    """Each battle's weight in the loss (its source's ``--weight``); 1 when none is given."""
    if weights is None:
        return [1.0] * len(battles)
    if len(weights) != len(battles):
        raise ValueError(f"{len(weights)} weights for {len(battles)} battles")
    return [float(w) for w in weights]


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
