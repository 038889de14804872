from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from ray import serve

from deployments.batching import DEFAULT, Batched
from deployments.health import HEALTH_PROBE, HEALTH_PROBE_TIMEOUT_S
from routing.config import RouterConfig
from routing.routers import make_router


@serve.deployment(ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=2 * DEFAULT.max_batch_size)
class Router:
    """One router model; scores prompts with P(strong wins), batching concurrent requests."""

    def __init__(self, config: RouterConfig, upstream_ids: tuple[str | None, str | None] = (None, None)) -> None:
        self.router = make_router(config, upstream_ids)
        self._score_one = Batched(self._score_batch)
        self._needs_embeddings = config.needs_embeddings
        # A router over embeddings can be probed once it has seen a vector of the right size.
        self._probe_embedding: np.ndarray | None = None

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Serve calls this with the deployment's ``user_config``: the batching (see :class:`BatchingConfig`)."""
        self._score_one.reconfigure(user_config)

    async def check_health(self) -> None:
        """Serve restarts a replica whose model no longer scores in time."""
        if self._needs_embeddings and self._probe_embedding is None:
            return
        embeddings = None if self._probe_embedding is None else self._probe_embedding[None, :]
        await asyncio.wait_for(asyncio.to_thread(self.router.score, [HEALTH_PROBE], embeddings), HEALTH_PROBE_TIMEOUT_S)

    async def score(self, prompts: list[str], embeddings: np.ndarray | None) -> list[float]:
        if len(prompts) != 1:
            return await self._score_batch(
                list(zip(prompts, embeddings if embeddings is not None else [None] * len(prompts), strict=True))
            )
        return [await self._score_one((prompts[0], None if embeddings is None else embeddings[0]))]

    async def _score_batch(self, items: list[tuple[str, np.ndarray | None]]) -> list[float]:
        prompts = [prompt for prompt, _ in items]
        embeddings = None if items[0][1] is None else np.stack([e for _, e in items])
        if embeddings is not None and self._probe_embedding is None:
            self._probe_embedding = embeddings[0].copy()
        # Scoring is CPU-bound: off the event loop, so the replica keeps accepting requests meanwhile.
        scores = await asyncio.to_thread(self.router.score, prompts, embeddings)
        return [float(s) for s in scores]
