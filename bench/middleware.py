"""The ingress's API-key check, CPU per request in this process: as the ingress runs it (plain
ASGI, ``deployments.openai_http.Authenticated``) beside the same check as Starlette's
``BaseHTTPMiddleware`` (``@app.middleware("http")``, which it replaced), and no check at all, each
on a FastAPI app with one JSON endpoint, called through httpx's in-process ASGI transport:

    python -m bench.middleware [--requests 3000] [--out docs/benchmarks/middleware.md]

Each figure is this process's CPU time (user + system, from the kernel) over ``--requests``
requests made one after another, per request.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request

from bench.tables import print_and_write
from deployments.openai_http import Authenticated, IngressState
from routing.serving.auth import ApiKeys
from testing import ROOT

KEY = "sk-bench-0123456789"
WARMUP = 300


def base_http_middleware(app: FastAPI, state: IngressState) -> None:
    @app.middleware("http")
    async def authenticate(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
        if request.url.path.startswith("/v1/"):
            headers = request.headers
            request.state.key_name = state.api_keys.check(headers.get("authorization"), headers.get("x-api-key"))
        return await call_next(request)


def plain_asgi(app: FastAPI, state: IngressState) -> None:
    app.add_middleware(Authenticated, state=state)


def no_check(app: FastAPI, state: IngressState) -> None:
    pass


CHECKS: dict[str, Callable[[FastAPI, IngressState], None]] = {
    "none": no_check,
    "BaseHTTPMiddleware": base_http_middleware,
    "plain ASGI (shipped)": plain_asgi,
}


def app_with(check: Callable[[FastAPI, IngressState], None]) -> FastAPI:
    app = FastAPI()
    check(app, IngressState(ApiKeys([f"bench {KEY}"])))

    @app.post("/v1/echo")
    async def echo(body: dict[str, Any], request: Request) -> dict[str, Any]:
        return {"key": getattr(request.state, "key_name", None), **body}

    return app


async def cpu_ms_per_request(app: FastAPI, requests: int) -> float:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

        async def call() -> None:
            answer = await client.post("/v1/echo", json={"n": 1}, headers={"authorization": f"Bearer {KEY}"})
            answer.raise_for_status()

        for _ in range(WARMUP):
            await call()
        start = time.process_time()
        for _ in range(requests):
            await call()
        return round(1000 * (time.process_time() - start) / requests, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "middleware.md")
    args = parser.parse_args()
    lines = [
        f"CPU ms per request in this process, {args.requests} requests one after another:",
        "",
        "| API-key check | ms per request |",
        "|---|---:|",
    ]
    for name, check in CHECKS.items():
        lines.append(f"| {name} | {asyncio.run(cpu_ms_per_request(app_with(check), args.requests))} |")
    print_and_write("\n".join(lines) + "\n", "bench.middleware", args.out)


if __name__ == "__main__":
    main()
