"""The routing step's latency on CPU, as the alert ``RouteLLMRoutingOverheadHigh`` reads it: the
p50 and p99 of ``routellm_routing_seconds`` per router, computed from Ray's exported buckets the
way Prometheus's ``histogram_quantile`` does.

    python -m bench.routing_p99 --out docs/observability/routing_p99.md

The graph is ``serve_config.yaml`` (the ``cpu`` profile's config) on a private 2-CPU cluster, its
upstreams on an address nothing answers (``/v1/route`` calls no model). For each number of
clients, ``--seconds`` of ``/v1/route`` requests spread evenly over the routers, on MMLU
questions (``data/eval/mmlu.jsonl.gz``, read in a fixed shuffle).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from itertools import count
from pathlib import Path

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel

from routing.offline.commands.prompts import read_prompts
from testing import ROOT
from testing.apps import shipped_config
from testing.cluster import deployed

PROMPTS = ROOT / "data" / "eval" / "mmlu.jsonl.gz"
NOBODY = "http://127.0.0.1:9/v1"  # the discard port: /v1/route never calls an upstream
METRIC = "ray_routellm_routing_seconds_bucket"
EXPORT_S = 12.0  # Ray exports metrics every ~10 s

Buckets = dict[str, dict[float, float]]  # router → upper bound → cumulative count


class RouterLatency(BaseModel):
    clients: int
    router: str
    requests: int
    p50_ms: float
    p99_ms: float


def buckets(metrics_url: str) -> Buckets:
    """Each router's cumulative bucket counts, summed over replicas."""
    counts: Buckets = defaultdict(lambda: defaultdict(float))
    for family in text_string_to_metric_families(httpx.get(metrics_url, timeout=10).text):
        for sample in family.samples:
            if sample.name == METRIC:
                counts[sample.labels["router"]][float(sample.labels["le"])] += sample.value
    return counts


def quantile(q: float, cumulative: dict[float, float]) -> float:
    """``histogram_quantile(q, …)``: linear within the bucket the rank falls in; the highest
    finite bound when it falls in the last, open-ended one."""
    bounds = sorted(cumulative)
    total = cumulative[bounds[-1]]
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        if cumulative[bound] >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - below) / max(cumulative[bound] - below, 1e-12)
        lower, below = bound, cumulative[bound]
    return lower


def load(url: str, routers: list[str], prompts: list[str], clients: int, seconds: float) -> None:
    """``clients`` threads sending /v1/route back to back for ``seconds``, each request to the next
    router in turn."""
    ends = time.monotonic() + seconds
    ticket, lock = count(), threading.Lock()

    def client() -> None:
        with httpx.Client(timeout=60) as http:
            while time.monotonic() < ends:
                with lock:
                    i = next(ticket)
                body = {
                    "model": f"router-{routers[i % len(routers)]}",
                    "messages": [{"role": "user", "content": prompts[i % len(prompts)]}],
                }
                http.post(url + "/v1/route", json=body).raise_for_status()

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda _: client(), range(clients)))


def measure(clients_levels: list[int], seconds: float) -> list[RouterLatency]:
    config = shipped_config(NOBODY)
    routers = list(config["applications"][0]["args"]["routers"])
    prompts = list(dict.fromkeys(read_prompts(PROMPTS)))
    prompts = [prompts[i] for i in np.random.default_rng(0).permutation(len(prompts))]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, deployed(config, Path(tmp)) as cluster:
        load(cluster.url, routers, prompts, 2, 10)  # warm: every router's first batches
        time.sleep(EXPORT_S)
        for clients in clients_levels:
            before = buckets(cluster.metrics_url)
            load(cluster.url, routers, prompts, clients, seconds)
            time.sleep(EXPORT_S)
            after = buckets(cluster.metrics_url)
            for router in routers:
                during = {le: n - before.get(router, {}).get(le, 0.0) for le, n in after[router].items()}
                rows.append(
                    RouterLatency(
                        clients=clients,
                        router=router,
                        requests=round(during[math.inf]),
                        p50_ms=round(1000 * quantile(0.5, during), 1),
                        p99_ms=round(1000 * quantile(0.99, during), 1),
                    )
                )
                print(rows[-1].model_dump(), flush=True)
    return rows


def report(rows: list[RouterLatency], seconds: float) -> str:
    lines = [
        "# The routing step's latency on CPU",
        "",
        "Written by `python -m bench.routing_p99` (see its docstring): `serve_config.yaml` on a private",
        f"2-CPU Ray cluster, `/v1/route` on MMLU questions for {seconds:g} s per row group, the",
        "routers taking turns; p50 and p99 of `routellm_routing_seconds` (embedding and ranking),",
        "computed from Ray's buckets as Prometheus's `histogram_quantile` does.",
        "",
        f"Machine: {platform.machine()}, {len(os.sched_getaffinity(0))} CPUs.",
        "",
        "| clients | router | requests | p50 ms | p99 ms |",
        "|---:|---|---:|---:|---:|",
    ]
    lines += [f"| {r.clients} | {r.router} | {r.requests} | {r.p50_ms:g} | {r.p99_ms:g} |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "observability" / "routing_p99.md")
    args = parser.parse_args()
    rows = measure(args.clients, args.seconds)
    args.out.write_text(report(rows, args.seconds))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
