from __future__ import annotations

from typing import Protocol

import numpy as np


class Router(Protocol):
    """Scores prompts with P(the strong model's answer beats the weak model's)."""

    def score(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        """One score in [0, 1] per prompt; ``embeddings`` is given when the router's config
        says ``needs_embeddings``."""
        ...
