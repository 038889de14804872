"""The ingress's HTTP guards on a real ASGI server: the body-size limit, declared or streamed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI, Request

from deployments.openai_http import BodyLimit, register_error_handlers

LIMIT = 2048


@pytest.fixture(scope="module")
def guarded() -> Iterator[FastAPI]:
    app = FastAPI()
    app.add_middleware(BodyLimit, max_bytes=LIMIT)
    register_error_handlers(app)

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    yield app


def post(app: FastAPI, **kwargs: object) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://guarded") as client:
            return await client.post("/echo", **kwargs)  # type: ignore[arg-type]

    return asyncio.run(send())


def test_a_body_within_the_limit_passes(guarded: FastAPI) -> None:
    response = post(guarded, content=b"x" * LIMIT)
    assert response.status_code == 200 and response.json() == {"received": LIMIT}


def test_a_declared_body_over_the_limit_is_413_before_it_is_read(guarded: FastAPI) -> None:
    response = post(guarded, content=b"x" * (LIMIT + 1))
    assert response.status_code == 413
    assert response.json()["error"] == {
        "message": f"the request body is larger than this service takes ({LIMIT} bytes)",
        "type": "invalid_request_error",
        "param": None,
        "code": "request_too_large",
    }


def test_a_streamed_body_without_length_is_cut_off_at_the_limit(guarded: FastAPI) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"y" * 512

    response = post(guarded, content=chunks())
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"
