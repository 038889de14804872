"""Sending requests and counting their outcomes against the API's contract."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.reliability.apis import CHAT, Api, sse_events
from bench.reliability.service import Service


@dataclass
class Tally:
    scenario: str
    sent: int = 0
    answered: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    fallbacks: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.sent += 1
        self.latencies_s.append(outcome.seconds)
        if outcome.failure is None:
            self.answered += 1
        else:
            self.failed[outcome.failure] += 1
        if outcome.fallback:
            self.fallbacks[outcome.fallback] += 1
        if outcome.problem:
            self.problems.append(outcome.problem)

    def row(self) -> dict[str, Any]:
        lat = sorted(self.latencies_s) or [0.0]
        return {
            "scenario": self.scenario,
            "sent": self.sent,
            "answered": self.answered,
            "failed": dict(self.failed),
            "fallbacks": dict(self.fallbacks),
            "p50_s": round(statistics.median(lat), 3),
            "max_s": round(lat[-1], 3),
            "problems": self.problems[:5],
        }


@dataclass
class Outcome:
    seconds: float
    failure: str | None = None  # "<status> <code>", "stream_error <code>" or "transport <exception>"
    fallback: str | None = None
    problem: str | None = None  # a response that breaks the contract: not its API's error shape, an unended stream


async def send_one(
    client: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str], api: Api = CHAT
) -> Outcome:
    started = time.monotonic()
    try:
        if not body.get("stream"):
            response = await client.post(api.path, json=body, headers=headers)
            return outcome_of(response, time.monotonic() - started, api)
        async with client.stream("POST", api.path, json=body, headers=headers) as response:
            if response.status_code != 200:
                await response.aread()
                return outcome_of(response, time.monotonic() - started, api)
            events = sse_events([line async for line in response.aiter_lines()])
        failure, problem = api.stream_end(events)
        return Outcome(time.monotonic() - started, failure, response.headers.get("x-route-fallback"), problem)
    except httpx.HTTPError as exc:
        return Outcome(time.monotonic() - started, f"transport {type(exc).__name__}")


def outcome_of(response: httpx.Response, seconds: float, api: Api = CHAT) -> Outcome:
    fallback = response.headers.get("x-route-fallback")
    if response.status_code == 200:
        return Outcome(seconds, None, fallback)
    problem = api.error_problem(response)
    code = None if problem else api.error_code(response.json())
    failure = f"{response.status_code} {code}"
    if response.status_code == 503 and "retry-after" not in response.headers:
        problem = problem or "a 503 without Retry-After"
    return Outcome(seconds, failure, fallback, problem)


async def load(
    service: Service,
    scenario: str,
    bodies: list[dict[str, Any]],
    concurrency: int,
    during: Callable[[], None] | None = None,
    during_at_s: float = 0.0,
    api: Api = CHAT,
) -> Tally:
    """Sends ``bodies`` to ``api`` with ``concurrency`` in flight; ``during`` runs once, ``during_at_s`` in."""
    tally, queue = Tally(scenario), list(enumerate(bodies))
    async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:

        async def worker() -> None:
            while queue:
                _, body = queue.pop(0)
                tally.add(await send_one(client, body, service.headers(), api))

        async def disrupt() -> None:
            if during is not None:
                await asyncio.sleep(during_at_s)
                await asyncio.to_thread(during)

        await asyncio.gather(disrupt(), *(worker() for _ in range(concurrency)))
    return tally
