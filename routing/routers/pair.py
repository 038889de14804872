"""Routers that score a chosen pair of the models they were trained on (mf, sw_ranking)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from routing.routers.checkpoint import CheckpointError, Manifest
from routing.routers.model_aliases import canonical_model_name


def scoring_pair(manifest: Manifest, strong: str | None, weak: str | None) -> tuple[str, str]:
    """The (strong, weak) pair to score, each given or else the checkpoint's default, checked to be known."""
    pair = []
    for role, name, default in (("strong", strong, manifest.default_strong), ("weak", weak, manifest.default_weak)):
        chosen = canonical_model_name(name) if name else default
        if chosen is None or chosen not in manifest.models:
            known = ", ".join(manifest.models)
            raise CheckpointError(
                f"{role} model '{chosen}' is not one the checkpoint was trained on; it knows: {known}"
            )
        pair.append(chosen)
    return pair[0], pair[1]


def ladder_models(pairs: Sequence[tuple[str, str]]) -> list[str]:
    """The models of a ladder of (most capable, cheaper) pairs, cheapest first, the most capable last."""
    return [cheaper for _, cheaper in pairs] + [pairs[0][0]] if pairs else []


def check_embeddings(embeddings: np.ndarray | None, prompts: list[str], dim: int, router: str) -> np.ndarray:
    if embeddings is None or embeddings.shape != (len(prompts), dim):
        got = None if embeddings is None else embeddings.shape
        raise ValueError(f"{router} router needs {len(prompts)}×{dim} embeddings, got {got}")
    return embeddings
