"""Gathering concurrent calls into batches for one model, or for one call to another process.

A batch starts as soon as a slot is free (``max_in_flight`` batches run at once; one for a
model, which computes one batch at a time), and holds every call waiting by then (up to
``max_batch_size``); calls that arrive while the slots are taken form the next batch. Under
load the batch size follows the backlog, and a lone call waits for nothing but
``batch_wait_timeout_s``.

Ray Serve's ``@serve.batch`` forms the next batch while the current one still runs, from what
arrives within the wait: with a short wait and a busy model its batches stay small (docs/benchmarks.md
has the before and after), and a long wait delays every lone request.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from routing.config import BatchingConfig

Item = TypeVar("Item")
Result = TypeVar("Result")


class AdaptiveBatcher(Generic[Item, Result]):
    """``await batcher(item)`` runs ``handle_batch`` over a batch of concurrent items, at most
    ``max_in_flight`` batches at a time; ``on_batch`` sees each batch's size (for metrics)."""

    def __init__(
        self,
        handle_batch: Callable[[list[Item]], Awaitable[list[Result]]],
        config: BatchingConfig | None = None,
        on_batch: Callable[[int], None] = lambda size: None,
        max_in_flight: int = 1,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.handle_batch = handle_batch
        self.config = config or BatchingConfig()
        self.on_batch = on_batch
        # Each waiting call: its item, its caller's future, and when it arrived (time.monotonic()).
        self._waiting: deque[tuple[Item, asyncio.Future[Result], float]] = deque()
        self._arrived = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(max_in_flight)
        self._running: dict[asyncio.Task[None], list[tuple[Item, asyncio.Future[Result]]]] = {}
        self._started: dict[asyncio.Task[None], float] = {}
        self.last_batch_done: float | None = None  # time.monotonic() when a batch last succeeded

    async def __call__(self, item: Item) -> Result:
        return await self._enqueue([item])[0]

    async def many(self, items: list[Item]) -> list[Result]:
        """The results of ``items``, batched with every other call; a failed batch raises here
        as it does for a single call."""
        futures = self._enqueue(items)
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return outcomes  # type: ignore[return-value]

    def _enqueue(self, items: list[Item]) -> list[asyncio.Future[Result]]:
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Result]] = [loop.create_future() for _ in items]
        now = time.monotonic()
        self._waiting.extend((item, future, now) for item, future in zip(items, futures, strict=True))
        self._arrived.set()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run())
        return futures

    def behind_s(self) -> float:
        """Seconds the longest-waiting call not yet in a batch has waited while batches kept
        succeeding: how far behind a working stage is. 0 when none waits, or when no batch has
        succeeded since it arrived: a stage that is down is not behind (callers time out)."""
        if not self._waiting or self.last_batch_done is None:
            return 0.0
        arrived = self._waiting[0][2]
        return time.monotonic() - arrived if self.last_batch_done >= arrived else 0.0

    def busy_for(self) -> float:
        """Seconds the oldest running batch has been running (0 when none runs)."""
        return time.monotonic() - min(self._started.values()) if self._started else 0.0

    async def _run(self) -> None:
        try:
            await self._batches()
        except asyncio.CancelledError:
            # The worker is torn down (the replica stops): every caller hears of it, none waits on.
            for task, batch in list(self._running.items()):
                task.cancel()
                for _, future in batch:
                    future.cancel()
            for _, future, _ in self._waiting:
                future.cancel()
            self._waiting.clear()
            raise

    async def _batches(self) -> None:
        while self._waiting:
            await self._slots.acquire()
            await self._fill()
            batch = [self._waiting.popleft() for _ in range(min(self.config.max_batch_size, len(self._waiting)))]
            live = [(item, future) for item, future, _ in batch if not future.done()]  # cancelled callers drop out
            if not live:
                self._slots.release()
                continue
            self.on_batch(len(live))
            task = asyncio.create_task(self._run_batch(live))
            self._running[task] = live
            self._started[task] = time.monotonic()
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        self._started.pop(task, None)
        self._slots.release()

    async def _run_batch(self, live: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self.handle_batch([item for item, _ in live])
            if len(results) != len(live):
                raise RuntimeError(f"a batch of {len(live)} gave {len(results)} results")
        except Exception as exc:  # every caller of the batch gets the failure
            for _, future in live:
                if not future.done():
                    future.set_exception(exc)
            return
        self.last_batch_done = time.monotonic()
        for (_, future), result in zip(live, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def _fill(self) -> None:
        """Waits up to ``batch_wait_timeout_s`` for a batch that is not yet full."""
        deadline = asyncio.get_running_loop().time() + self.config.batch_wait_timeout_s
        while len(self._waiting) < self.config.max_batch_size:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                return
