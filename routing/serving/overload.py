"""Refusing what the service cannot start soon. A request that arrives while the ingress is more
than ``limits.max_queue_delay_ms`` behind is answered 503 with ``Retry-After`` at once, before
its body is read, instead of waiting seconds in line behind the others (docs/benchmarks.md,
under LLM-shaped load). Behind means either:

- the ingress's event loop runs late: its CPU is saturated, and every request it holds waits
  for its turn at each step;
- a routing step has waited that long for the router stage while the stage kept answering: the
  embedding or router replicas are saturated, and the ingress's batches of routing steps queue
  for them. A stage that answers nothing (its replica lost, restarting) is not behind: its
  routing steps end by ``fallback.routing_timeout_s`` and ``fallback.on_routing_error``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from routing.errors import ServiceUnavailable

RETRY_AFTER_S = 1.0


class LoopLag:
    """How late the running event loop wakes its timers: a task sleeps ``tick_s`` again and
    again; :meth:`lag_s` is the most it overslept over the last ``window`` ticks."""

    def __init__(self, tick_s: float = 0.01, window: int = 25) -> None:
        self.tick_s = tick_s
        self._late: deque[float] = deque([0.0], maxlen=window)
        self._task: asyncio.Task[None] | None = None

    def watch(self) -> None:
        """Starts watching the running loop (once; again if the task died)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._tick())

    def lag_s(self) -> float:
        return max(self._late)

    async def _tick(self) -> None:
        while True:
            started = time.monotonic()
            await asyncio.sleep(self.tick_s)
            self._late.append(max(0.0, time.monotonic() - started - self.tick_s))


class Admission:
    """Whether a new request may start: the loop's lag and the longest wait for the router
    stage (``queued_s``), each against ``max_delay_s`` (0: every request is taken)."""

    def __init__(self, max_delay_s: float, queued_s: Callable[[], float], lag: LoopLag | None = None) -> None:
        self.max_delay_s = max_delay_s
        self.queued_s = queued_s
        self.lag = lag or LoopLag()

    def check(self) -> None:
        """Raises :class:`ServiceUnavailable` (503, ``Retry-After``) when the ingress is behind."""
        if not self.max_delay_s:
            return
        self.lag.watch()
        behind = max(self.lag.lag_s(), self.queued_s())
        if behind > self.max_delay_s:
            raise ServiceUnavailable(
                f"the service is {1000 * behind:.0f} ms behind (limits.max_queue_delay_ms: "
                f"{1000 * self.max_delay_s:g}); retry shortly",
                retry_after_s=RETRY_AFTER_S,
                code="overloaded",
            )
