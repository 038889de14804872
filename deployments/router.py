from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np
from ray import serve

from deployments.batching import DEFAULT, Batched
from deployments.health import HEALTH_PROBE, HEALTH_PROBE_TIMEOUT_S
from routing.config import ConfigError, RouterConfig, load_router_user_config
from routing.routers import checkpoint_problems, make_router

logger = logging.getLogger("ray.serve")


@serve.deployment(ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=2 * DEFAULT.max_batch_size)
class Router:
    """One router model; scores prompts with P(strong wins), batching concurrent requests."""

    def __init__(
        self,
        config: RouterConfig,
        upstream_ids: tuple[str | None, str | None] = (None, None),
        embedding_model_id: str = "",
    ) -> None:
        """``embedding_model_id``: the app's embedding model, which a swapped-in mf or
        sw_ranking checkpoint must have been trained on."""
        self.config = config
        self.upstream_ids = upstream_ids
        self.embedding_model_id = embedding_model_id
        self.router = make_router(config, upstream_ids)
        self.checkpoint = config.checkpoint
        self._score_one = Batched(self._score_batch)
        self._needs_embeddings = config.needs_embeddings
        # A router over embeddings can be probed once it has seen a vector of the right size.
        self._probe_embedding: np.ndarray | None = None

    async def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Serve calls this with the deployment's ``user_config`` (see :class:`RouterUserConfig`):
        the batching, and the checkpoint to score with. A new checkpoint is loaded while the
        current one keeps scoring; batches already running finish on the one they started with.

        A bad ``user_config`` or checkpoint is logged and refused, not raised: Serve would mark
        the deployment failed while the current model is still good to serve with."""
        try:
            settings = load_router_user_config(user_config)
        except ConfigError as exc:
            logger.error("user_config refused, router unchanged: %s", exc)
            return
        self._score_one.batcher.config = settings
        checkpoint = settings.checkpoint or self.config.checkpoint
        if checkpoint == self.checkpoint:
            return
        config = self.config.model_copy(update={"checkpoint": checkpoint})
        problems = checkpoint_problems("user_config.checkpoint", config, self.upstream_ids, self.embedding_model_id)
        if problems:
            logger.error("checkpoint refused, still scoring with %s: %s", self.checkpoint, "; ".join(problems))
            return
        try:
            router = await asyncio.to_thread(make_router, config, self.upstream_ids)
        except Exception:
            logger.exception("checkpoint %s did not load, still scoring with %s", checkpoint, self.checkpoint)
            return
        self.router, self.checkpoint = router, checkpoint
        logger.info("now scoring with checkpoint %s", checkpoint)

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
