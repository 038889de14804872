from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from ray import serve

from deployments.batching import DEFAULT, Batched
from deployments.health import HEALTH_PROBE, HEALTH_PROBE_TIMEOUT_S, needs_probe
from routing.config import Embedding as EmbeddingConfig
from routing.config import LocalEmbedding
from routing.embeddings import make_embedder


@serve.deployment(ray_actor_options={"num_cpus": 0.5}, max_ongoing_requests=2 * DEFAULT.max_batch_size)
class Embedding:
    """Prompt embeddings for every router that needs them, batching concurrent requests."""

    def __init__(self, config: EmbeddingConfig) -> None:
        self.embedder = make_embedder(config)
        self.probed = isinstance(config, LocalEmbedding)
        self._batched = Batched(self._embed_batch)

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Serve calls this with the deployment's ``user_config``: the batching (see :class:`BatchingConfig`)."""
        self._batched.reconfigure(user_config)

    async def check_health(self) -> None:
        """Serve restarts a replica whose model no longer computes in time. A remote embedding
        endpoint is not probed: its failures are the routing step's to handle. A replica whose
        batches finish is not probed either (see :func:`needs_probe`)."""
        if self.probed and needs_probe(self._batched.batcher):
            await asyncio.wait_for(self.embedder.embed([HEALTH_PROBE]), HEALTH_PROBE_TIMEOUT_S)

    async def embed(self, texts: list[str]) -> np.ndarray:
        """The ingress's batches go through the replica's batcher too, so that the batches of
        several ingress replicas share forward passes and only one runs at a time."""
        if not texts:
            return await self.embedder.embed(texts)
        return np.stack(await self._batched.many(texts))

    async def _embed_batch(self, texts: list[str]) -> list[np.ndarray]:
        return list(await self.embedder.embed(texts))
