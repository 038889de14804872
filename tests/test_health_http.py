"""The ingress's ``/health`` over ASGI, on an in-process engine whose embeddings come from a fake
upstream: 503 ``live`` while a router cannot route, 200 ``ready`` once it can, and one probe for a
burst of concurrent checks; never ready while a client key is a published placeholder; an
upstream that refuses its key named."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from deployments.openai_http import IngressState, openai_app
from routing.config import AuthConfig, load_app_config
from routing.serving.auth import ApiKeys
from routing.serving.in_process import in_process_engine
from testing.apps import fake_pair_args
from testing.fake_upstream import FakeUpstream

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


def _get(app: object, path: str, key: str | None = None) -> httpx.Response:
    async def get() -> httpx.Response:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingress") as client:
            return await client.get(path, headers=headers)

    return asyncio.run(get())


def test_a_published_client_key_keeps_health_unready_and_is_refused(
    strong: FakeUpstream, weak: FakeUpstream, tmp_path: Path
) -> None:
    embedding = {"backend": "openai", "model": "sentence-transformers/all-MiniLM-L6-v2", "base_url": weak.base_url}
    engine = in_process_engine(load_app_config(fake_pair_args(strong, weak, embedding=embedding)).resolve_env({}))
    secret = tmp_path / "client-keys"
    secret.write_text("sk-team-1\nreplace-with-a-client-key\n")
    auth = AuthConfig(api_keys_file=str(secret))
    state = IngressState(ApiKeys.load(auth, {}))
    app = openai_app(engine, state)

    health = _get(app, "/health")
    assert health.status_code == 503 and health.json()["status"] == "live"
    assert f"auth.api_keys_file ({secret})" in health.json()["auth_error"]
    assert "replace-with-a-client-key" not in health.text  # the message names the source, not the key
    refused = _get(app, "/v1/models", key="replace-with-a-client-key")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    assert _get(app, "/v1/models", key="sk-team-1").status_code == 200

    secret.write_text("sk-team-1\nsk-team-2\n")  # the operator replaces it; the next health check re-reads
    state.api_keys = ApiKeys.load(auth, {})
    health = _get(app, "/health")
    assert health.status_code == 200 and "auth_error" not in health.json()
    assert _get(app, "/v1/models", key="sk-team-2").status_code == 200  # the keys re-read are the ones in force


def test_an_upstream_refusing_its_key_is_named_and_asked_again(
    weak: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = FakeUpstream("locked", api_key="sk-the-right-one")
    try:
        args = fake_pair_args(locked, weak)
        args["upstreams"]["strong"]["api_key_env"] = "LOCKED_API_KEY"
        monkeypatch.setenv("LOCKED_API_KEY", "sk-a-wrong-one")
        engine = in_process_engine(load_app_config(args).resolve_env({}))
        rejected = asyncio.run(engine.rejected_keys(timeout_s=5))
        assert rejected == {"big": "HTTP 401: Incorrect API key provided."}
        state = IngressState(ApiKeys([]), rejected_keys=rejected)
        upstreams = _get(openai_app(engine, state), "/health").json()["upstreams"]
        assert upstreams == {"big": "key rejected: HTTP 401: Incorrect API key provided.", "small": "configured"}

        monkeypatch.setenv("LOCKED_API_KEY", "sk-the-right-one")
        engine = in_process_engine(load_app_config(args).resolve_env({}))
        assert asyncio.run(engine.rejected_keys(timeout_s=5)) == {}
    finally:
        locked.stop()
