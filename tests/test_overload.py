"""Refusing what the ingress cannot start soon (``limits.max_queue_delay_ms``): its event loop's
lag and the wait of routing steps for the router stage, and the 503 with ``Retry-After`` that a
request gets over real HTTP while the ingress's loop runs late (the in-process engine served from
a thread, a route of the same app holding the loop as a saturated CPU would)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
from fastapi import FastAPI

from deployments.openai_http import IngressState
from deployments.service_app import service_app
from routing.config import BatchingConfig, load_app_config
from routing.errors import ServiceUnavailable
from routing.serving.auth import ApiKeys
from routing.serving.batching import AdaptiveBatcher
from routing.serving.in_process import in_process_engine
from routing.serving.overload import Admission, LoopLag
from testing.apps import on_fake
from testing.fake_upstream import FakeUpstream
from testing.local_server import serving

HELD_S = 0.4
ASK = [{"role": "user", "content": "Name a prime."}]


def test_the_loop_lag_is_how_late_a_held_loop_woke() -> None:
    async def hold() -> tuple[float, float]:
        lag = LoopLag(tick_s=0.01, window=10)
        lag.watch()
        await asyncio.sleep(0.05)
        quiet = lag.lag_s()
        time.sleep(HELD_S)  # the loop runs nothing else meanwhile
        await asyncio.sleep(0.02)
        return quiet, lag.lag_s()

    quiet, held = asyncio.run(hold())
    assert held >= HELD_S - 0.05 > quiet


def test_a_routing_step_waiting_on_a_working_stage_refuses_new_requests() -> None:
    async def run() -> tuple[float, float, list[bool]]:
        async def handle(items: list[int]) -> list[int]:
            await asyncio.sleep(0.1)
            return items

        batcher = AdaptiveBatcher(handle, BatchingConfig(max_batch_size=1), max_in_flight=1)
        calls = [asyncio.ensure_future(batcher(n)) for n in range(6)]
        await asyncio.sleep(0.35)  # three batches done, the rest waited all along
        behind = batcher.behind_s()
        refused = [_refused(Admission(limit, batcher.behind_s)) for limit in (0.1, 0.0, 1.0)]
        await asyncio.gather(*calls)
        return behind, batcher.behind_s(), refused

    behind, after, refused = asyncio.run(run())
    assert behind >= 0.3 and after == 0.0
    assert refused == [True, False, False]  # over 0.1 s; 0 takes every request; under 1 s


def test_a_stage_that_answers_nothing_is_not_behind() -> None:
    async def run() -> float:
        async def handle(items: list[int]) -> list[int]:
            await asyncio.Event().wait()  # a lost replica: the call never returns
            return items

        batcher = AdaptiveBatcher(handle, BatchingConfig(max_batch_size=1), max_in_flight=1)
        calls = [asyncio.ensure_future(batcher(n)) for n in range(3)]
        await asyncio.sleep(0.2)
        behind = batcher.behind_s()
        for call in calls:
            call.cancel()
        return behind

    assert asyncio.run(run()) == 0.0


def _refused(admission: Admission) -> bool:
    try:
        admission.check()
    except ServiceUnavailable as exc:
        assert exc.retry_after_s == 1.0 and "limits.max_queue_delay_ms" in exc.message
        return True
    return False


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    server = FakeUpstream("small")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def url(upstream: FakeUpstream) -> Iterator[str]:
    args = {
        "upstreams": {"strong": on_fake(upstream, "big"), "weak": on_fake(upstream, "small")},
        "routers": {"random": {"type": "random"}},
        "limits": {"max_queue_delay_ms": 100},
    }
    config = load_app_config(args).resolve_env({})
    engine = in_process_engine(config)
    # The in-process engine's routers are local objects: nothing queues for the router stage.
    app = service_app(
        engine, IngressState(ApiKeys([])), Admission(config.limits.max_queue_delay_ms / 1000, lambda: 0.0)
    )
    hold_loop(app)
    with serving(app) as base:
        yield base


def hold_loop(app: FastAPI) -> None:
    @app.post("/hold")
    async def hold() -> dict[str, bool]:
        time.sleep(HELD_S)  # on the loop, as work that saturates the ingress's CPU keeps it
        return {"held": True}


def test_a_request_is_refused_with_retry_after_while_the_loop_runs_late(url: str) -> None:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=10)
    assert client.chat.completions.create(model="router-random-0.5", messages=ASK).choices  # the loop is watched
    assert httpx.post(f"{url}/hold", timeout=10).json() == {"held": True}
    with pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(model="router-random-0.5", messages=ASK)
    response = refused.value.response
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    error = response.json()["error"]
    assert error["type"] == "service_unavailable" and error["code"] == "overloaded"
    assert "limits.max_queue_delay_ms" in error["message"]
    time.sleep(1.0)  # the late wake-up leaves the window
    assert client.chat.completions.create(model="router-random-0.5", messages=ASK).choices


def test_health_is_answered_while_api_requests_are_refused(url: str) -> None:
    ask = {"model": "router-random-0.5", "messages": ASK}
    assert httpx.post(f"{url}/v1/chat/completions", json=ask, timeout=10).status_code == 200
    httpx.post(f"{url}/hold", timeout=10)
    assert httpx.get(f"{url}/health/live", timeout=10).json() == {"status": "live"}
    assert httpx.post(f"{url}/v1/chat/completions", json=ask, timeout=10).status_code == 503
