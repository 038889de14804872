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


def decisive(battles: Sequence[Battle]) -> list[Battle]:
    return [b for b in battles if b.winner in ("model_a", "model_b") and b.model_a != b.model_b]


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
