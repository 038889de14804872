from __future__ import annotations

import numpy as np
from ray import serve

from routing.config import Embedding as EmbeddingConfig
from routing.embeddings import make_embedder


@serve.deployment(ray_actor_options={"num_cpus": 0.5}, max_ongoing_requests=64)
class Embedding:
    """Prompt embeddings for every router that needs them."""

    def __init__(self, config: EmbeddingConfig) -> None:
        self.embedder = make_embedder(config)

    async def embed(self, texts: list[str]) -> np.ndarray:
        return await self.embedder.embed(texts)
