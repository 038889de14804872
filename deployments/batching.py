"""A replica's batching: :class:`AdaptiveBatcher` with its settings from the deployment's
``user_config`` (changed on running replicas by ``serve deploy``) and its batches counted in
Serve's metrics (``routellm_batches``, ``routellm_batch_size``, by deployment)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from ray.serve import metrics

from routing.config import BatchingConfig, load_batching_config
from routing.serving.batching import AdaptiveBatcher
from routing.settings import ConfigError

Item = TypeVar("Item")
Result = TypeVar("Result")

logger = logging.getLogger("ray.serve")

DEFAULT = BatchingConfig()
BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]


class Batched(Generic[Item, Result]):
    def __init__(self, handle_batch: Callable[[list[Item]], Awaitable[list[Result]]]) -> None:
        batches = metrics.Counter("routellm_batches", description="forward passes over a batch of requests")
        # Ray exports a histogram's _sum from its buckets' midpoints, so the mean batch size is
        # this counter over routellm_batches, never the histogram's _sum over its _count.
        batched = metrics.Counter("routellm_batched_requests", description="requests run in those batches")
        sizes = metrics.Histogram(
            "routellm_batch_size", description="requests per batch", boundaries=BATCH_SIZE_BUCKETS
        )

        def count(size: int) -> None:
            batches.inc()
            batched.inc(size)
            sizes.observe(size)

        self.batcher = AdaptiveBatcher(handle_batch, DEFAULT, on_batch=count)

    async def many(self, items: list[Item]) -> list[Result]:
        return await self.batcher.many(items)

    def reconfigure(self, user_config: dict[str, Any] | None) -> None:
        """Applies a deployment's ``user_config``; a bad one is logged and the current batching kept
        (raising would make Serve mark the deployment failed while its replicas still serve)."""
        try:
            self.batcher.config = load_batching_config(user_config)
        except ConfigError as exc:
            logger.error("user_config refused, batching unchanged: %s", exc)
