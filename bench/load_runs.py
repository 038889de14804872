"""The measured runs of ``bench.knee``: a k6 run with every process's CPU time read from the
kernel around it, the overhead over a known upstream time, and streamed time to first token."""

from __future__ import annotations

import json
import os
import statistics
import time
from typing import Any

import httpx

from bench.served import cpu_by_process
from testing.k6_load import K6Result, run_k6

DRIVER = "bench driver"
UPSTREAM = "fake upstream"
GENERATOR = "load generator (k6)"
# Not the service: what a run's CPU per request is summed without.
OUTSIDE = {DRIVER, UPSTREAM, GENERATOR}
SATURATED_P50_MS = 1000.0


class Measured:
    """One k6 run against a server, with the CPU each process spent during it."""

    def __init__(self, result: K6Result, cpu_s: dict[str, float], upstream_s: float) -> None:
        self.result = result
        self.cpu_s = {**cpu_s, GENERATOR: result.generator_cpu_s}
        self.upstream_s = upstream_s
        self.replicas: dict[str, int] = {}  # running replicas per deployment once the run ended

    def cpu_ms_per_request(self) -> dict[str, float]:
        answered = max(self.result.answered_all, 1)
        return {name: round(1000 * seconds / answered, 2) for name, seconds in self.cpu_s.items() if seconds > 0}

    def server_cpu_ms_per_request(self, per_process: dict[str, float] | None = None) -> float:
        per_process = self.cpu_ms_per_request() if per_process is None else per_process
        return round(sum(ms for name, ms in per_process.items() if name not in OUTSIDE), 2)

    def overhead_ms(self, q: str) -> float:
        return round(getattr(self.result, f"{q}_ms") - 1000 * self.upstream_s, 1)

    def summary(self) -> dict[str, Any]:
        r, per_process = self.result, self.cpu_ms_per_request()
        return {
            "mode": r.mode,
            "offered_per_s": r.offered_per_s,
            "clients": r.clients,
            "answered_per_s": round(r.answered_per_s, 1),
            "answered": r.answered,
            "shed_with_retry_after": r.shed_with_retry_after,
            "shed_without_retry_after": r.shed_without_retry_after,
            "failed": r.failed,
            "dropped_by_generator": r.dropped,
            "p50_ms": round(r.p50_ms, 1),
            "p99_ms": round(r.p99_ms, 1),
            "overhead_p50_ms": self.overhead_ms("p50"),
            "overhead_p99_ms": self.overhead_ms("p99"),
            "server_cpu_ms_per_request": self.server_cpu_ms_per_request(per_process),
            "cpu_ms_per_request": per_process,
            **({"replicas": self.replicas} if self.replicas else {}),
        }

    def saturated(self) -> bool:
        """Whether the service refused requests, or queued the median one for over a second."""
        r = self.result
        return r.answered < 0.99 * r.sent or not r.answered or self.overhead_ms("p50") > SATURATED_P50_MS

    def past_knee(self, bound_ms: float) -> bool:
        """Whether this run's overhead p99 crossed ``bound_ms`` or some request got no answer."""
        r = self.result
        return r.answered < r.sent or not r.answered or self.overhead_ms("p99") > bound_ms


def measured(
    url: str,
    bodies: list[dict[str, Any]],
    own_pids: dict[int, str],
    upstream_s: float = 0.0,
    **load: Any,
) -> Measured:
    """A k6 run (``load``: :func:`run_k6`'s options) with the CPU time of the service's processes
    (Ray's, by deployment), and of ``own_pids`` by their labels, over the whole run."""
    pids = {os.getpid(): DRIVER, **own_pids}
    result, cpu = cpu_by_process(lambda: run_k6(url, bodies, expected_s=upstream_s + 1, **load), pids)
    # A request still queued when its run ends is answered during the next one's warm-up.
    time.sleep(2)
    return Measured(result, cpu, upstream_s)


def first_token_ms(url: str, bodies: list[dict[str, Any]], count: int = 40, warmup: int = 5) -> float:
    """Median time to the first streamed content of a chat request, one request at a time."""
    times = []
    with httpx.Client(timeout=30) as http:
        for number, body in enumerate(bodies[: warmup + count]):
            started = time.perf_counter()
            with http.stream("POST", url, json=body | {"stream": True}) as response:
                response.raise_for_status()
                for line in response.iter_lines():
                    if _has_content(line):
                        break
                else:
                    raise RuntimeError(f"{url} streamed no content")
            if number >= warmup:
                times.append(1000 * (time.perf_counter() - started))
    return round(statistics.median(times), 2)


def _has_content(line: str) -> bool:
    if not line.startswith("data: {"):
        return False
    choices = json.loads(line.removeprefix("data: ")).get("choices") or [{}]
    return bool((choices[0].get("delta") or {}).get("content"))


def idle_total(run: dict[str, Any]) -> float | None:
    """The idle CPU of a router's run, ms per second over the service's processes; None for runs
    measured before the figure existed."""
    idle = run.get("idle_cpu_ms_per_s")
    return round(sum(idle.values()), 1) if idle else None
