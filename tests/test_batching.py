"""The replica batcher: a batch starts when the model is free and takes the backlog."""

from __future__ import annotations

import asyncio

import pytest

from routing.config import BatchingConfig
from routing.serving.batching import AdaptiveBatcher


class Model:
    """Doubles numbers; each batch waits for ``release`` so a test can pile calls up behind it."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(items)
        await self.release.wait()
        if any(item < 0 for item in items):
            raise ValueError("negative input")
        return [2 * item for item in items]


def test_a_lone_call_runs_at_once_and_calls_behind_a_busy_model_share_the_next_batch() -> None:
    async def scenario() -> Model:
        model = Model()
        batcher = AdaptiveBatcher(model, BatchingConfig(max_batch_size=32))
        model.release.clear()
        first = asyncio.create_task(batcher(1))
        await asyncio.sleep(0.01)
        rest = [asyncio.create_task(batcher(n)) for n in range(2, 12)]
        await asyncio.sleep(0.01)
        model.release.set()
        assert await first == 2
        assert await asyncio.gather(*rest) == [2 * n for n in range(2, 12)]
        return model

    assert asyncio.run(scenario()).batches == [[1], list(range(2, 12))]


def test_batches_stop_at_the_configured_size() -> None:
    async def scenario() -> Model:
        model = Model()
        batcher = AdaptiveBatcher(model, BatchingConfig(max_batch_size=4))
        assert await asyncio.gather(*(batcher(n) for n in range(10))) == [2 * n for n in range(10)]
        return model

    assert [len(b) for b in asyncio.run(scenario()).batches] == [4, 4, 2]


def test_many_items_join_the_queue_together_and_a_failed_batch_raises_for_them() -> None:
    async def scenario() -> Model:
        model = Model()
        batcher = AdaptiveBatcher(model, BatchingConfig(max_batch_size=4))
        assert await batcher.many(list(range(6))) == [2 * n for n in range(6)]
        with pytest.raises(ValueError, match="negative input"):
            await batcher.many([1, -1])
        assert await batcher.many([]) == []
        return model

    assert asyncio.run(scenario()).batches == [[0, 1, 2, 3], [4, 5], [1, -1]]


def test_the_wait_gathers_calls_that_arrive_apart() -> None:
    async def scenario() -> Model:
        model = Model()
        batcher = AdaptiveBatcher(model, BatchingConfig(max_batch_size=8, batch_wait_timeout_s=0.3))

        async def later(n: int) -> int:
            await asyncio.sleep(0.02 * n)
            return await batcher(n)

        await asyncio.gather(*(later(n) for n in range(5)))
        return model

    assert asyncio.run(scenario()).batches == [[0, 1, 2, 3, 4]]


def test_a_failed_batch_fails_its_callers_only() -> None:
    async def scenario() -> tuple[list[object], int]:
        model = Model()
        batcher = AdaptiveBatcher(model, BatchingConfig(max_batch_size=2))
        outcomes = await asyncio.gather(batcher(-1), batcher(3), batcher(4), return_exceptions=True)
        return outcomes, await batcher(5)

    outcomes, after = asyncio.run(scenario())
    assert isinstance(outcomes[0], ValueError) and isinstance(outcomes[1], ValueError)
    assert outcomes[2] == 8 and after == 10


def test_a_batch_that_returns_too_few_results_is_an_error() -> None:
    async def short(items: list[int]) -> list[int]:
        return items[:-1]

    async def scenario() -> None:
        batcher = AdaptiveBatcher(short)
        await asyncio.gather(batcher(1), batcher(2))

    with pytest.raises(RuntimeError, match="gave 1 results"):
        asyncio.run(scenario())


def test_batch_sizes_are_reported() -> None:
    sizes: list[int] = []

    async def scenario() -> None:
        batcher = AdaptiveBatcher(Model(), BatchingConfig(max_batch_size=3), on_batch=sizes.append)
        await asyncio.gather(*(batcher(n) for n in range(7)))

    asyncio.run(scenario())
    assert sizes == [3, 3, 1]


def test_callers_hear_when_the_worker_is_torn_down_mid_batch() -> None:
    async def scenario() -> None:
        model = Model()
        batcher = AdaptiveBatcher(model, BatchingConfig(max_batch_size=2))
        model.release.clear()
        calls = [asyncio.create_task(batcher(n)) for n in range(5)]
        await asyncio.sleep(0.01)
        assert model.batches == [[0, 1]]
        assert batcher._worker is not None
        batcher._worker.cancel()  # what a replica's shutdown does to its tasks
        outcomes = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 1)
        assert all(isinstance(o, asyncio.CancelledError) for o in outcomes)

    asyncio.run(scenario())


def test_batches_in_flight_run_at_once_and_each_takes_the_backlog() -> None:
    async def scenario() -> Model:
        model = Model()
        batcher = AdaptiveBatcher(model, BatchingConfig(max_batch_size=32), max_in_flight=2)
        model.release.clear()
        first = [asyncio.create_task(batcher(n)) for n in range(3)]
        await asyncio.sleep(0.01)
        second = [asyncio.create_task(batcher(n)) for n in range(3, 6)]
        await asyncio.sleep(0.01)
        third = [asyncio.create_task(batcher(n)) for n in range(6, 9)]
        await asyncio.sleep(0.01)
        assert model.batches == [[0, 1, 2], [3, 4, 5]]  # both slots busy: the third group waits
        model.release.set()
        assert await asyncio.gather(*first, *second, *third) == [2 * n for n in range(9)]
        return model

    assert asyncio.run(scenario()).batches == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]


def test_the_batcher_tells_how_long_a_batch_runs_and_when_one_last_finished() -> None:
    async def scenario() -> None:
        model = Model()
        batcher = AdaptiveBatcher(model)
        assert batcher.busy_for() == 0 and batcher.last_batch_done is None
        model.release.clear()
        call = asyncio.create_task(batcher(1))
        await asyncio.sleep(0.05)
        assert batcher.busy_for() >= 0.05 and batcher.last_batch_done is None
        model.release.set()
        await call
        assert batcher.busy_for() == 0 and batcher.last_batch_done is not None
        failing = batcher.last_batch_done
        with pytest.raises(ValueError):
            await batcher(-1)
        assert batcher.last_batch_done == failing  # a failed batch proves nothing

    asyncio.run(scenario())


def test_max_in_flight_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        AdaptiveBatcher(Model(), max_in_flight=0)


def test_a_replica_is_probed_only_when_idle_and_fails_when_a_batch_hangs(monkeypatch: pytest.MonkeyPatch) -> None:
    from deployments import health

    async def scenario() -> None:
        model = Model()
        batcher = AdaptiveBatcher(model)
        assert health.needs_probe(batcher)  # nothing has run yet
        await batcher(1)
        assert not health.needs_probe(batcher, idle_after_s=60)  # traffic proves it
        await asyncio.sleep(0.02)
        assert health.needs_probe(batcher, idle_after_s=0.01)  # idle for longer than that
        model.release.clear()
        call = asyncio.create_task(batcher(2))
        await asyncio.sleep(0.02)
        assert not health.needs_probe(batcher, idle_after_s=0.01)  # a batch is running
        monkeypatch.setattr(health, "HEALTH_PROBE_TIMEOUT_S", 0.01)
        with pytest.raises(RuntimeError, match="a batch has been running for"):
            health.needs_probe(batcher)
        model.release.set()
        await call

    asyncio.run(scenario())
