from __future__ import annotations

from typing import Protocol

import numpy as np


class Embedder(Protocol):
    """Turns prompts into L2-normalised float32 vectors, one row per prompt. One that holds
    connections also has ``async aclose()``, called when it is no longer needed."""

    model_id: str

    async def embed(self, texts: list[str]) -> np.ndarray: ...


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
