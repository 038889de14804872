"""A closed-loop HTTP load generator: N clients, each sending its next request when the last is answered.

Each client has its own ``httpx.AsyncClient``: one shared connection pool caps the generator
itself at a few hundred requests/s on this machine, below what the servers under test answer.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from pydantic import BaseModel

NO_DELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class LoadResult(BaseModel):
    """One load run: per-request latencies and outcomes, and the figures derived from them."""

    concurrency: int
    seconds: float
    latencies_ms: list[float]
    statuses: dict[str, int]

    @property
    def answered(self) -> int:
        return self.statuses.get("200", 0)

    @property
    def errors(self) -> int:
        return sum(self.statuses.values()) - self.answered

    @property
    def requests_per_s(self) -> float:
        return self.answered / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def summary(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "requests_per_s": round(self.requests_per_s, 1),
            "p50_ms": round(self.percentile_ms(50), 2),
            "p90_ms": round(self.percentile_ms(90), 2),
            "p99_ms": round(self.percentile_ms(99), 2),
            "max_ms": round(max(self.latencies_ms, default=float("nan")), 2),
            "answered": self.answered,
            "errors": self.errors,
            "statuses": self.statuses,
        }


def sample_prompts(count: int = 512, seed: int = 0) -> list[str]:
    """A seeded sample of the shipped training prompts (chat questions and long documents alike):
    the same requests for every server and for the in-process limit."""
    from routing.offline.data.convert import to_battles
    from routing.offline.data.files import read_preference_data

    root = Path(__file__).resolve().parent.parent
    prompts = sorted({battle.prompt for battle in to_battles(read_preference_data(root / "data" / "train"))})
    rows = np.random.default_rng(seed).choice(len(prompts), size=count, replace=False)
    return [prompts[i] for i in rows]


def chat_bodies(prompts: list[str], model: str, max_tokens: int = 16) -> Iterator[dict[str, Any]]:
    """Chat requests cycling through ``prompts``, the same sequence on every server under test."""
    for prompt in itertools.cycle(prompts):
        yield {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens}


async def closed_loop(
    url: str,
    bodies: Iterator[dict[str, Any]],
    concurrency: int,
    duration_s: float | None = None,
    requests: int | None = None,
    headers: dict[str, str] | None = None,
    warmup_s: float = 0.0,
    timeout_s: float = 60.0,
    ramp_s: float = 0.0,
) -> LoadResult:
    """Runs ``concurrency`` clients against ``url`` for ``duration_s`` (or until ``requests`` are
    sent). Requests that start during the first ``warmup_s`` are not counted. Client ``i`` starts
    ``i * ramp_s / concurrency`` seconds in: against an upstream that always takes the same time,
    clients started together would stay in step and arrive in bursts."""
    if (duration_s is None) == (requests is None):
        raise ValueError("give exactly one of duration_s and requests")
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    sent = itertools.count()
    start = time.perf_counter()
    measure_from = start + warmup_s
    stop_at = start + warmup_s + duration_s if duration_s is not None else float("inf")
    out_of_requests: Callable[[], bool] = (lambda: next(sent) >= requests) if requests is not None else (lambda: False)

    async def client(number: int) -> None:
        await asyncio.sleep(number * ramp_s / concurrency)
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        # httpx writes a request's headers and body apart; with Nagle's algorithm on, the body
        # waits for the server's delayed ACK (~40 ms) on some servers.
        transport = httpx.AsyncHTTPTransport(limits=limits, socket_options=[NO_DELAY])
        async with httpx.AsyncClient(timeout=timeout_s, transport=transport, headers=headers) as http:
            while time.perf_counter() < stop_at and not out_of_requests():
                body = next(bodies)
                began = time.perf_counter()
                try:
                    response = await http.post(url, json=body)
                    status = str(response.status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                ended = time.perf_counter()
                if began >= measure_from:
                    latencies.append(1000 * (ended - began))
                    statuses[status] += 1

    await asyncio.gather(*(client(number) for number in range(concurrency)))
    seconds = time.perf_counter() - measure_from
    return LoadResult(concurrency=concurrency, seconds=seconds, latencies_ms=latencies, statuses=dict(statuses))


def run_load(url: str, bodies: Iterator[dict[str, Any]], concurrency: int, **options: Any) -> LoadResult:
    return asyncio.run(closed_loop(url, bodies, concurrency, **options))
