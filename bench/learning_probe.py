"""Whether the learner's rounds slow the requests served meanwhile (``python -m bench.learning``).

A round labels, shadows, refits, calibrates and promotes on the service's own machine and
upstreams. Probe requests measure the chat path around it: the same prompts, through a router the
learner does not learn from (so they neither start a round nor are shadowed), once while no round
runs and again, batch after batch, until the round has finished. Every probe is counted, and one
that fails is counted as such rather than stopping the run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import numpy as np

PROBE_ROUTER = "probe"
PROBE_MODEL = f"router-{PROBE_ROUTER}-0.5"
CONCURRENCY = 4
ROUND_DEADLINE_S = 1800


@dataclass(frozen=True)
class Probed:
    idle_p50_ms: float | None
    round_p50_ms: float | None
    round_probes: int
    failed: int


async def _probe(url: str, prompts: list[str]) -> tuple[list[float], int]:
    """The seconds each answered probe took, and how many failed."""
    limit = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:

        async def one(prompt: str) -> float | None:
            body = {"model": PROBE_MODEL, "messages": [{"role": "user", "content": prompt}]}
            async with limit:
                began = time.perf_counter()
                try:
                    answered = (await client.post("/v1/chat/completions", json=body)).status_code == 200
                except httpx.HTTPError:
                    answered = False
                return time.perf_counter() - began if answered else None

        seconds = await asyncio.gather(*(one(p) for p in prompts))
    return [s for s in seconds if s is not None], sum(s is None for s in seconds)


def idle(url: str, prompts: list[str]) -> tuple[list[float], int]:
    return asyncio.run(_probe(url, prompts))


def until(url: str, prompts: list[str], finished: Callable[[], bool]) -> tuple[list[float], int]:
    """Probe batches until ``finished`` (a round's end), at least one."""
    deadline = time.monotonic() + ROUND_DEADLINE_S
    seconds, failed = [], 0
    while True:
        more, lost = asyncio.run(_probe(url, prompts))
        seconds, failed = seconds + more, failed + lost
        if finished():
            return seconds, failed
        assert time.monotonic() < deadline, "the round did not finish"


def probed(at_idle: tuple[list[float], int], in_round: tuple[list[float], int]) -> Probed:
    return Probed(_p50(at_idle[0]), _p50(in_round[0]), len(in_round[0]) + in_round[1], at_idle[1] + in_round[1])


def _p50(seconds: list[float]) -> float | None:
    return round(1000 * float(np.median(seconds)), 1) if seconds else None
