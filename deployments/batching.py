"""Request batching with ``@serve.batch`` where it works.

Concurrent single-prompt calls to a replica are gathered into one batch, so one forward pass
serves many requests. ``@serve.batch`` needs a replica context, which Serve's local testing
mode does not have; there each call runs as its own batch of one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from ray import serve
from ray.serve.exceptions import RayServeException

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_BATCH_SIZE = 32
BATCH_WAIT_TIMEOUT_S = 0.002


def batched(
    handle_batch: Callable[[list[Item]], Awaitable[list[Result]]],
    max_batch_size: int = MAX_BATCH_SIZE,
    batch_wait_timeout_s: float = BATCH_WAIT_TIMEOUT_S,
) -> Callable[[Item], Awaitable[Result]]:
    try:
        serve.get_replica_context()
    except RayServeException:

        async def one_at_a_time(item: Item) -> Result:
            return (await handle_batch([item]))[0]

        return one_at_a_time
    return serve.batch(max_batch_size=max_batch_size, batch_wait_timeout_s=batch_wait_timeout_s)(handle_batch)
