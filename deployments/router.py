from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from ray import serve
from ray.serve.handle import DeploymentHandle

from deployments.batching import DEFAULT, Batched
from deployments.health import HEALTH_PROBE, HEALTH_PROBE_TIMEOUT_S, needs_probe
from deployments.learned_versions import LearnedVersions
from deployments.share_metrics import ShareMetrics
from routing.config import load_router_user_config
from routing.errors import InvalidRequest
from routing.resources import MissingResource
from routing.routers.checkpoint import CheckpointError
from routing.routers.kind import Candidate, RouterDefaults, RouterSettings
from routing.serving.live_router import LiveRouter, Ranking, RankQuery, RouterState
from routing.settings import ConfigError

logger = logging.getLogger("ray.serve")


@serve.deployment(ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=2 * DEFAULT.max_batch_size)
class Router:
    """One router in service (:class:`LiveRouter`): orders its candidates for each prompt,
    batching concurrent requests, and owns its checkpoint, which its ``user_config`` swaps (or,
    for a router that learns, the learner's version in service)."""

    async def __init__(
        self,
        name: str,
        config: RouterSettings,
        candidates: Sequence[Candidate],
        embedding_model_id: str,
        learner: DeploymentHandle | None = None,
    ) -> None:
        """``embedding_model_id``: the app's embedding model, which a checkpoint of a router over
        embeddings must have been trained on. ``learner``: the Learner deployment of a router
        that learns; the replica serves the version it has in service and follows its changes."""
        self.router = LiveRouter(name, config, candidates, embedding_model_id)
        self.shares = ShareMetrics(name, candidates[-1].key)
        self._batched = Batched(self._rank_batch)
        # A router over embeddings can be probed once it has seen a vector of the right size.
        self._probe_embedding: np.ndarray | None = None
        self.learned: LearnedVersions | None = None
        if learner is not None:
            self.learned = LearnedVersions(name, learner, config.checkpoint, self._swap)
            await self.learned.start()

    async def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Serve calls this with the deployment's ``user_config`` (see :class:`RouterUserConfig`)
        on every replica, a restarted one included: the batching, the checkpoint to serve (loaded
        while the current one keeps serving), and the defaults.

        A bad ``user_config`` or checkpoint is logged and refused, not raised: Serve would mark
        the deployment failed while the current model is still good to serve with."""
        try:
            settings = load_router_user_config(user_config)
        except ConfigError as exc:
            logger.error("user_config refused, router unchanged: %s", exc)
            self.router.refused(str(exc))
            return
        self._batched.batcher.config = settings
        if self.learned is None:
            await self._swap(settings.checkpoint or self.router.config.checkpoint)
        elif settings.checkpoint:
            logger.error(
                "user_config.checkpoint ignored: router '%s' learns, and serves the learner's version "
                "(change it with 'routellm-serve promote' or 'rollback')",
                self.router.name,
            )
        named = settings.model_fields_set & set(RouterDefaults.model_fields)
        defaults = RouterDefaults(**settings.model_dump(include=named)) if named else self.router.configured_defaults
        try:
            self.router.set_defaults(defaults)
        except ConfigError as exc:
            logger.error("user_config defaults refused, router-%s keeps its current ones: %s", self.router.name, exc)
            self.router.refused(f"user_config.{exc}")
        else:
            self.router.refused(None)

    def __del__(self) -> None:
        learned = getattr(self, "learned", None)  # absent when __init__ failed
        if learned is not None:
            learned.close()

    async def _swap(self, checkpoint: str) -> bool:
        """Swaps ``checkpoint`` in; False when it was refused (the current one serves on)."""
        try:
            swapped = await asyncio.to_thread(self.router.swap_to, checkpoint)
        except (CheckpointError, MissingResource) as exc:
            logger.error("checkpoint refused, still serving %s: %s", self.router.checkpoint, exc)
        except Exception:
            logger.exception("checkpoint %s did not load, still serving %s", checkpoint, self.router.checkpoint)
        else:
            if swapped:
                logger.info("now serving checkpoint %s (%s)", checkpoint, self.router.state.checkpoint)
            return True
        return False

    async def check_health(self) -> None:
        """Serve restarts a replica whose model no longer scores in time (probed only when idle)."""
        if not needs_probe(self._batched.batcher):
            return
        if self.router.kind.needs_embeddings and self._probe_embedding is None:
            return
        embeddings = None if self._probe_embedding is None else self._probe_embedding[None, :]
        probe = asyncio.to_thread(self.router.scorer.beaten, [HEALTH_PROBE], embeddings)
        await asyncio.wait_for(probe, HEALTH_PROBE_TIMEOUT_S)

    async def rank_many(self, queries: list[RankQuery]) -> list[Ranking | InvalidRequest]:
        """The ingress's batch of routing steps; the batches of every ingress replica are scored
        together. A query the router refuses is returned as its error, so the rest still succeed."""
        return await self._batched.many(queries)

    async def state(self) -> RouterState:
        return self.router.state

    async def _rank_batch(self, queries: list[RankQuery]) -> list[Ranking | InvalidRequest]:
        if self._probe_embedding is None and queries[0].embedding is not None:
            self._probe_embedding = queries[0].embedding.copy()
        # Scoring is CPU-bound: off the event loop, so the replica keeps accepting requests meanwhile.
        rankings = await asyncio.to_thread(self.router.rank, queries)
        self.shares.decided([r for r in rankings if isinstance(r, Ranking)])
        return rankings
