"""The benchmarks, side by side in one run: the router against the raw model limit, against
RouteLLM 0.2.0's own server, under a slow upstream; SW ranking; cold start and memory.

    python -m bench.run [--seconds 10] [--scenarios router_stage chat ...] [--out docs/benchmarks] [--report-only]

router_stage: the router stage (``/v1/route``: embedding + MF, no model call) through Serve at
    saturation, against MiniLM + MF in one process on the same cores, and with three candidates
    against two;
chat: chat requests through this service and through RouteLLM 0.2.0's server (installed once into
    ``.bench/routellm-0.2.0``), both calling the same fake upstream: requests/s at 32 clients
    (median of 3 runs), and the latency added to a direct upstream call at 1 client, against one
    MiniLM forward pass;
slow_upstream: an upstream answering in 2 s and 200 clients: the routing overhead (latency − 2 s)
    and errors;
sw_ranking: SW ranking: requests/s against the paper's 2.9, and through Serve;
cold_start: ``serve run serve_config.yaml`` to the first answer, and the graph's memory (PSS) at idle.

Every server runs alone on the machine while it is measured; the load generator (asyncio +
httpx, one connection per client) and the fake upstream share its cores. Prints the table and
writes ``report.md``, ``results.json`` and PNG plots into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench import coldstart, limits, sw_ranking
from bench.peer import peer_server
from bench.plots import write_plots
from bench.report import SATURATION, SLOW_CLIENTS, SLOW_UPSTREAM_S, report, table
from bench.served import batch_size_totals, cpu_by_process, means_during, stage_latency_totals
from bench.tables import print_and_write, write_results
from routing.resources import MINILM_MODEL_ID
from testing import ROOT
from testing.apps import shipped_config, three_model_config
from testing.cluster import deployed
from testing.fake_upstream import FakeUpstream
from testing.load import LoadResult, chat_bodies, run_load, sample_prompts

SCENARIOS = ("router_stage", "chat", "slow_upstream", "sw_ranking", "cold_start")
FEWER_CLIENTS = 40  # 20 requests/s offered: within the graph's capacity on 2 cores
PEER_VENV = ROOT / ".bench" / "routellm-0.2.0"


class Bench:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.prompts = sample_prompts()
        self.results: dict[str, Any] = {}

    def load(
        self, url: str, model: str, concurrency: int, seconds: float | None = None, ramp_s: float = 0.0
    ) -> LoadResult:
        return run_load(
            url,
            chat_bodies(self.prompts, model),
            concurrency,
            duration_s=seconds or self.seconds,
            warmup_s=2 + 2 * ramp_s,
            ramp_s=ramp_s,
        )

    def saturated(self, url: str, model: str) -> dict[str, Any]:
        """Three runs at :data:`SATURATION` clients; the one with the median requests/s."""
        runs = sorted((self.load(url, model, SATURATION) for _ in range(3)), key=lambda r: r.requests_per_s)
        return runs[1].summary() | {"runs_per_s": [round(r.requests_per_s, 1) for r in runs]}

    def serial(self, url: str, model: str) -> dict[str, Any]:
        return self.load(url, model, 1).summary()


def in_process(bench: Bench) -> None:
    threads = os.cpu_count() or 1
    encoder = limits.warm_encoder(bench.prompts, threads)
    bench.results["in_process"] = {
        "torch_threads": threads,
        "one_forward_ms": limits.one_forward_ms(encoder, bench.prompts),
        "router_stage_limit_per_s": limits.router_stage_limit(encoder, bench.prompts),
    }
    # The shipped Embedding replica runs one torch thread.
    one_thread = limits.warm_encoder(bench.prompts, torch_threads=1)
    bench.results["in_process"] |= {
        "one_forward_ms_1_thread": limits.one_forward_ms(one_thread, bench.prompts),
        "served_batch_per_s_1_thread": limits.served_batch_rates(one_thread, bench.prompts),
    }


def peer(bench: Bench, upstream: FakeUpstream, embeddings: FakeUpstream) -> None:
    out: dict[str, Any] = {}
    with peer_server(PEER_VENV, "random", upstream.base_url) as (url, _):
        chat = url + "/v1/chat/completions"
        out["random"] = {
            "saturated": bench.saturated(chat, "router-random-0.5"),
            "serial": bench.serial(chat, "router-random-0.5"),
        }
    embeddings.behave("ok", record=False, dimensions=1536)
    with peer_server(PEER_VENV, "mf", upstream.base_url, embeddings.base_url) as (url, _):
        chat = url + "/v1/chat/completions"
        out["mf_openai_embeddings"] = {"saturated": bench.saturated(chat, "router-mf-0.5")}
        embeddings.behave("ok", record=False, dimensions=1536, delay_s=0.05)
        out["mf_openai_embeddings_50ms"] = {"saturated": bench.load(chat, "router-mf-0.5", SATURATION).summary()}
    embeddings.behave("ok", record=False)
    bench.results["peer"] = out


def ours_local(bench: Bench, upstream: FakeUpstream, scenarios: set[str], workdir: Path) -> None:
    """The shipped graph (local MiniLM embeddings) with both models on the fake upstream."""
    out: dict[str, Any] = bench.results.setdefault("ours", {})
    config = shipped_config(upstream.base_url, ("random", "mf", "sw_ranking"))
    with deployed(config, workdir / "local") as cluster:
        chat, route = cluster.url + "/v1/chat/completions", cluster.url + "/v1/route"
        own = {upstream.process.pid: "fake upstream"}
        if "chat" in scenarios:
            stages = partial(stage_latency_totals, cluster.metrics_url)
            out["random"] = {"saturated": bench.saturated(chat, "router-random-0.5")}
            out["random"]["serial"], _ = means_during(lambda: bench.serial(chat, "router-random-0.5"), stages)
            out["mf_local"] = {}
            out["mf_local"]["saturated"], batch_sizes = means_during(
                lambda: bench.saturated(chat, "router-mf-0.5"), partial(batch_size_totals, cluster.metrics_url)
            )
            out["mf_local"]["serial"], latency = means_during(lambda: bench.serial(chat, "router-mf-0.5"), stages)
            bodies = chat_bodies(bench.prompts, "router-mf-0.5")
            profiled, cpu = cpu_by_process(lambda: run_load(chat, bodies, SATURATION, duration_s=bench.seconds), own)
            bench.results["profile"] = {
                "requests": profiled.answered,
                "cpu_ms_per_request": {k: round(1000 * v / profiled.answered, 2) for k, v in cpu.items()},
                "stage_latency_ms": {k: round(v, 2) for k, v in latency.items()},
                "mean_batch_size": {k: round(v, 2) for k, v in batch_sizes.items()},
            }
        if "router_stage" in scenarios:
            out["route_mf"] = {"saturated": bench.saturated(route, "router-mf-0.5")}
        if "sw_ranking" in scenarios:
            out["route_sw_ranking"] = {"saturated": bench.load(route, "router-sw_ranking-0.5", SATURATION).summary()}
        if "slow_upstream" in scenarios:
            upstream.behave("ok", record=False, delay_s=SLOW_UPSTREAM_S)
            seconds = max(30.0, 3 * bench.seconds)
            runs = {
                f"direct, {SLOW_CLIENTS} clients": (upstream.base_url + "/chat/completions", "strong", SLOW_CLIENTS),
                f"mf, {SLOW_CLIENTS} clients": (chat, "router-mf-0.5", SLOW_CLIENTS),
                f"random, {SLOW_CLIENTS} clients": (chat, "router-random-0.5", SLOW_CLIENTS),
                f"mf, {FEWER_CLIENTS} clients": (chat, "router-mf-0.5", FEWER_CLIENTS),
            }
            slow = {}
            for name, (url, model, clients) in runs.items():
                result = bench.load(url, model, clients, seconds, ramp_s=SLOW_UPSTREAM_S)
                overhead = [ms - 1000 * SLOW_UPSTREAM_S for ms in result.latencies_ms]
                slow[name] = result.summary() | {
                    "overhead_p50_ms": round(float(np.percentile(overhead, 50)), 1),
                    "overhead_p99_ms": round(float(np.percentile(overhead, 99)), 1),
                    "overhead_ms": [round(ms, 1) for ms in overhead],
                }
            upstream.behave("ok", record=False)
            bench.results["slow_upstream"] = slow


def ours_three_candidates(bench: Bench, upstream: FakeUpstream, workdir: Path) -> None:
    """The router stage of the three-model example graph, the same hops as the shipped one."""
    out: dict[str, Any] = bench.results.setdefault("ours", {})
    with deployed(three_model_config(upstream.base_url), workdir / "three") as cluster:
        out["route_mf_three_candidates"] = {"saturated": bench.saturated(cluster.url + "/v1/route", "router-mf-0.5")}


def ours_openai_embeddings(bench: Bench, upstream: FakeUpstream, embeddings: FakeUpstream, workdir: Path) -> None:
    """The same graph with its embeddings from the peer's endpoint: an OpenAI-compatible API
    serving MiniLM-sized vectors, so that the shipped MF head reads them."""
    embedding = {"backend": "openai", "model": MINILM_MODEL_ID, "base_url": embeddings.base_url, "dimensions": 384}
    out: dict[str, Any] = bench.results.setdefault("ours", {})
    with deployed(shipped_config(upstream.base_url, ("mf",), embedding), workdir / "openai") as cluster:
        chat = cluster.url + "/v1/chat/completions"
        out["mf_openai_embeddings"] = {"saturated": bench.saturated(chat, "router-mf-0.5")}
        embeddings.behave("ok", record=False, delay_s=0.05)
        out["mf_openai_embeddings_50ms"] = {"saturated": bench.load(chat, "router-mf-0.5", SATURATION).summary()}
        embeddings.behave("ok", record=False)


def direct(bench: Bench, upstream: FakeUpstream) -> None:
    url = upstream.base_url + "/chat/completions"
    bench.results["direct"] = {
        "saturated": bench.load(url, "strong", SATURATION).summary(),
        "serial": bench.serial(url, "strong"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measured run")
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS), help="which to run")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    parser.add_argument("--report-only", action="store_true", help="the report and plots of --out's results, again")
    args = parser.parse_args()
    if args.report_only:
        results = json.loads((args.out / "results.json").read_text())
        write_plots(results, args.out)
        print_and_write(report(results), "bench.run", args.out / "report.md")
        return
    bench = Bench(args.seconds)
    wanted = set(args.scenarios)
    bench.results["machine"] = {
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "seconds": args.seconds,
        "prompts": len(bench.prompts),
        "median_prompt_chars": statistics.median(len(p) for p in bench.prompts),
    }
    steps: list[tuple[str, Callable[[], None]]] = []
    upstream, embeddings = FakeUpstream("upstream"), FakeUpstream("embeddings")
    upstream.behave("ok", record=False)
    embeddings.behave("ok", record=False)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if {"router_stage", "chat"} & wanted:
            steps.append(("in-process limits", lambda: in_process(bench)))
        if "chat" in wanted:
            steps.append(("direct upstream", lambda: direct(bench, upstream)))
            steps.append(("RouteLLM 0.2.0", lambda: peer(bench, upstream, embeddings)))
        if wanted - {"cold_start"}:
            steps.append(("this service", lambda: ours_local(bench, upstream, wanted, workdir)))
        if "router_stage" in wanted:
            steps.append(("this service, three candidates", lambda: ours_three_candidates(bench, upstream, workdir)))
        if "chat" in wanted:
            steps.append(
                ("this service, embeddings API", lambda: ours_openai_embeddings(bench, upstream, embeddings, workdir))
            )
        if "sw_ranking" in wanted:
            steps.append(
                ("SW ranking in process", lambda: bench.results.__setitem__("sw_ranking", sw_ranking.measure()))
            )
        try:
            for name, step in steps:
                print(f"-- {name}", flush=True)
                step()
        finally:
            upstream.stop()
            embeddings.stop()
    if "cold_start" in wanted:
        print("-- cold start", flush=True)
        bench.results["cold_start"] = coldstart.measure().model_dump()
    write_results(bench.results | {"table": table(bench.results)}, report(bench.results), "bench.run", args.out)
    write_plots(bench.results, args.out)
    print(f"wrote {args.out / 'results.json'} and plots in {args.out}")


if __name__ == "__main__":
    main()
