"""The ingress's ``/health`` over ASGI, on an in-process engine whose embeddings come from a fake
upstream: 503 ``live`` while a router cannot route, 200 ``ready`` once it can, and one probe for a
burst of concurrent checks."""

from __future__ import annotations

import asyncio

import httpx
from conftest import FakeUpstream, fake_pair_args

from deployments.openai_http import IngressState, openai_app
from routing.auth import ApiKeys
from routing.config import load_app_config
from routing.engine import in_process_engine

BURST = 3


def test_health_is_live_until_every_router_routes_then_ready(strong: FakeUpstream, weak: FakeUpstream) -> None:
    embedding = {"backend": "openai", "model": "sentence-transformers/all-MiniLM-L6-v2", "base_url": weak.base_url}
    engine = in_process_engine(load_app_config(fake_pair_args(strong, weak, embedding=embedding)).resolve_env({}))
    app = openai_app(engine, IngressState(ApiKeys([])))

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingress") as client:
            return list(await asyncio.gather(*(client.get("/health") for _ in range(BURST))))

    weak.refuse()
    try:
        starting = asyncio.run(burst())
    finally:
        weak.restart()
    assert [r.status_code for r in starting] == [503] * BURST
    assert starting[0].json() == {
        "status": "live",
        "waiting_for": ["router 'mf'"],
        "upstreams": {"big": "configured", "small": "configured"},
        "circuits": {"big": "closed", "small": "closed"},
    }

    weak.reset()
    ready = asyncio.run(burst())
    assert [r.status_code for r in ready] == [200] * BURST and ready[0].json()["status"] == "ready"
    assert len(weak.requests()) == 1  # the burst shared one probe: one embedding of the probe prompt
    asyncio.run(burst())
    assert len(weak.requests()) == 1  # once ready, a check probes nothing
