"""The router stage and the LLM clients scale apart: replica counts over time under two loads.

    python -m bench.scaling [--seconds 40] [--concurrency 32]

Deploys the graph (``graph:build_app``, mf router, both models on fake upstream servers) with
fast autoscaling on a private local cluster, then:

1. scoring load: ``/v1/route`` requests (embedding and scoring, no model call) from
   ``--concurrency`` clients for ``--seconds``, then quiet;
2. upstream load: direct calls to the strong model, which answers in 2 s, from as many clients
   for as long, then quiet.

Once a second it reads the RUNNING replicas of each deployment (from ``serve.status()``); it
prints a row whenever a count or the load changes, with the requests answered so far. The
router stage should grow in phase 1 while the LLM clients stay at one replica, and the reverse
in phase 2; each shrinks back when its load ends.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from testing.apps import graph_config, on_fake
from testing.cluster import deployed
from testing.fake_upstream import FakeUpstream

DEPLOYMENTS = ("Ingress", "Embedding", "Router-mf", "LLM-strong", "LLM-weak")
ROUTER_STAGE = ("Embedding", "Router-mf")
# Small CPU shares, so that new replicas find room on a 2-core machine.
CPUS = {"Ingress": 0.2, "Embedding": 0.1, "Router-mf": 0.05, "LLM-strong": 0.05, "LLM-weak": 0.05}
# The router stage counts the ingress's batches (at most two in flight per ingress replica), as in
# serve_config.yaml; the LLM clients count requests.
TARGETS = {"Ingress": 64, "Embedding": 1, "Router-mf": 1}
SCALING = {
    "min_replicas": 1,
    "max_replicas": 4,
    "upscale_delay_s": 2,
    "downscale_delay_s": 8,
    "look_back_period_s": 2,
    "metrics_interval_s": 1,
}


def scaling_config(strong: FakeUpstream, weak: FakeUpstream) -> dict[str, Any]:
    args = {
        "upstreams": {
            "strong": on_fake(strong, "big"),
            "weak": on_fake(weak, "small"),
        },
        "routers": {"mf": {"type": "mf"}},
    }
    deployments = [
        {
            "name": name,
            "max_ongoing_requests": 64 if name == "Ingress" else 16,
            "autoscaling_config": {**SCALING, "target_ongoing_requests": TARGETS.get(name, 2)},
            "ray_actor_options": {"num_cpus": cpus},
        }
        for name, cpus in CPUS.items()
    ]
    return graph_config(args, deployments)


def replicas() -> dict[str, int]:
    from ray import serve

    status = serve.status().applications["router"].deployments
    return {name: status[name].replica_states.get("RUNNING", 0) for name in DEPLOYMENTS}


async def drive(url: str, body: dict[str, Any], path: str, concurrency: int, seconds: float, done: list[int]) -> None:
    stop_at = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def worker() -> None:
            while time.monotonic() < stop_at:
                response = await client.post(path, json=body)
                if response.status_code == 200:
                    done[0] += 1
                else:
                    done[1] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def phase(name: str, url: str, body: dict[str, Any], path: str, concurrency: int, seconds: float) -> list[dict]:
    """Load for ``seconds``, then as long again quiet; a row of replica counts every second."""
    done = [0, 0]
    load = threading.Thread(target=lambda: asyncio.run(drive(url, body, path, concurrency, seconds, done)))
    started = time.monotonic()
    load.start()
    rows = []
    while time.monotonic() - started < 2 * seconds + 10:
        t = time.monotonic() - started
        rows.append(
            {"phase": name, "t": round(t), "load": load.is_alive(), **replicas(), "ok": done[0], "failed": done[1]}
        )
        if len(rows) == 1 or any(rows[-1][k] != rows[-2][k] for k in ("load", *DEPLOYMENTS)):
            print(
                f"| {name} | {t:4.0f} | {'on ' if rows[-1]['load'] else 'off'} | "
                + " | ".join(str(rows[-1][d]) for d in DEPLOYMENTS)
                + f" | {done[0]} | {done[1]} |",
                flush=True,
            )
        time.sleep(1)
    load.join()
    return rows


def summary(rows: list[dict]) -> str:
    most = {d: max(r[d] for r in rows) for d in DEPLOYMENTS}
    last = rows[-1]
    return ", ".join(f"{d} max {most[d]} → {last[d]}" for d in DEPLOYMENTS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args(argv)
    strong, weak = FakeUpstream("strong"), FakeUpstream("weak")
    try:
        with (
            tempfile.TemporaryDirectory(prefix="sc-", dir="/tmp") as tmp,
            deployed(scaling_config(strong, weak), Path(tmp)) as cluster,
        ):
            strong.behave("ok", delay_s=2.0)
            print("| phase | t s | load | " + " | ".join(DEPLOYMENTS) + " | answered | failed |")
            print("|---|---:|---|" + "---:|" * (len(DEPLOYMENTS) + 2))
            chat = {"messages": [{"role": "user", "content": "Explain the difference between a process and a thread."}]}
            scoring = phase(
                "scoring", cluster.url, {"model": "router-mf-0.5", **chat}, "/v1/route", args.concurrency, args.seconds
            )
            upstream = phase(
                "upstream",
                cluster.url,
                {"model": "big", **chat},
                "/v1/chat/completions",
                args.concurrency,
                args.seconds,
            )
            print(f"\nscoring load:  {summary(scoring)}")
            print(f"upstream load: {summary(upstream)}")
    finally:
        strong.stop()
        weak.stop()


if __name__ == "__main__":
    main()
