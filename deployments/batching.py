"""Request batching with ``@serve.batch`` where it works.

Concurrent single-prompt calls to a replica are gathered into one batch, so one forward pass
serves many requests; the batch size and wait come from the deployment's ``user_config`` and
change on running replicas. ``@serve.batch`` needs a replica context, which Serve's local
testing mode does not have; there each call runs as its own batch of one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from ray import serve
from ray.serve.exceptions import RayServeException

from routing.config import BatchingConfig, ConfigError, load_batching_config

Item = TypeVar("Item")
Result = TypeVar("Result")

logger = logging.getLogger("ray.serve")

DEFAULT = BatchingConfig()


class Batched(Generic[Item, Result]):
    def __init__(self, handle_batch: Callable[[list[Item]], Awaitable[list[Result]]]) -> None:
        self.config = DEFAULT
        self._batch: Any = None
        try:
            serve.get_replica_context()
        except RayServeException:
            self._handle_batch = handle_batch
        else:
            self._batch = serve.batch(
                max_batch_size=DEFAULT.max_batch_size, batch_wait_timeout_s=DEFAULT.batch_wait_timeout_s
            )(handle_batch)

    async def __call__(self, item: Item) -> Result:
        if self._batch is None:
            return (await self._handle_batch([item]))[0]
        return await self._batch(item)

    def reconfigure(self, user_config: dict[str, Any] | None) -> None:
        """Applies a deployment's ``user_config``; a bad one is logged and the current batching kept
        (raising would make Serve mark the deployment failed while its replicas still serve)."""
        try:
            config = load_batching_config(user_config)
        except ConfigError as exc:
            logger.error("user_config refused, batching unchanged: %s", exc)
            return
        if self._batch is not None:
            self._batch.set_max_batch_size(config.max_batch_size)
            self._batch.set_batch_wait_timeout_s(config.batch_wait_timeout_s)
        self.config = config
