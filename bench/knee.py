"""The request path under LLM-shaped load, measured with a compiled load generator (k6), so that
the generator's own cost does not bound the figures:

    python -m bench.knee [--routers random mf] [--seconds 15] [--out docs/benchmarks/load] [--report-only]

- **CPU per routed request**, summed over the service's processes (each read from the kernel
  around the run), at a fixed arrival rate and at 32 closed-loop clients against an upstream that
  answers at once, beside RouteLLM 0.2.0's server under the same load;
- **the knee**: against an upstream answering in 2 s, open-loop arrival rates rising by half each
  step; the knee is the first where the overhead p99 (latency − 2 s) crosses 100 ms or a request
  goes unanswered, and the ladder goes on until the service is saturated (refusing requests, or
  an overhead p50 over 1 s); then 80 % and 2× the knee rate, counting 503s with ``Retry-After``
  apart from other errors;
- **streamed time to first token** at one client, through the service and from the upstream directly;
- **idle CPU**: what the service's processes spend per second with no traffic (Ray's and Serve's
  background work, which every request of a light load carries a share of);
- the **direct** figures: k6 against the fake upstream alone, at the top rate of the runs.

Writes ``results.json``, ``load.png`` and ``report.md`` (the table it prints) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bench import limits
from bench.load_plots import write_plots
from bench.load_runs import DRIVER, UPSTREAM, Measured, first_token_ms, measured
from bench.load_table import report
from bench.peer import peer_server
from bench.report import SATURATION, SLOW_UPSTREAM_S
from bench.served import cpu_by_process
from bench.tables import print_and_write, write_results
from testing import ROOT
from testing.apps import shipped_config
from testing.cluster import deployed
from testing.fake_upstream import FakeUpstream
from testing.load import chat_bodies, sample_prompts

BOUND_MS = 100.0
CPU_RATE = 15  # requests/s every server under test answers: CPU per request at the same load
SETTLE_S, IDLE_S = 5.0, 20.0  # after the deployment answers, before and while idle CPU is read
FIRST_RATE, STEP, TOP_RATE = 4, 1.5, 160  # k6 offers whole requests per second
MIN_REQUESTS, MAX_STEP_S = 200, 45.0
PEER_VENV = ROOT / ".bench" / "routellm-0.2.0"


class Knee:
    def __init__(self, seconds: float, upstream: FakeUpstream) -> None:
        self.seconds = seconds
        self.upstream = upstream
        self.prompts = sample_prompts()
        self.results: dict[str, Any] = {}
        self.replicas: Callable[[], dict[str, int]] | None = None
        self._bodies: dict[str, list[dict[str, Any]]] = {}

    def bodies(self, model: str) -> list[dict[str, Any]]:
        if model not in self._bodies:
            source = chat_bodies(self.prompts, model)
            self._bodies[model] = [next(source) for _ in self.prompts]
        return self._bodies[model]

    def run(self, url: str, model: str, own: dict[int, str], upstream_s: float = 0.0, **load: Any) -> Measured:
        self.upstream.behave("ok", record=False, delay_s=upstream_s)
        own = {self.upstream.process.pid: UPSTREAM, **own}
        seconds = load.pop("seconds", self.seconds)
        run = measured(url, self.bodies(model), own, upstream_s, seconds=seconds, **load)
        if self.replicas is not None:
            run.replicas = self.replicas()
        return run

    def idle_cpu(self) -> dict[str, float]:
        """CPU ms per second of each of the service's processes with no traffic."""
        time.sleep(SETTLE_S)
        _, cpu_s = cpu_by_process(lambda: time.sleep(IDLE_S), {os.getpid(): DRIVER})
        return {name: round(1000 * s / IDLE_S, 2) for name, s in cpu_s.items() if s > 0 and name != DRIVER}

    def open_cpu(self, url: str, model: str, own: dict[int, str]) -> dict[str, Any]:
        """At :data:`CPU_RATE` requests/s, the upstream answering at once."""
        return self.run(url, model, own, rate=CPU_RATE).summary()

    def closed_cpu(self, url: str, model: str, own: dict[int, str]) -> dict[str, Any]:
        """At 32 closed-loop clients, the upstream answering at once: the most it answers."""
        return self.run(url, model, own, clients=SATURATION).summary()

    def knee(self, url: str, model: str) -> dict[str, Any]:
        """The open-loop ladder under a 2 s upstream, on past the knee until the service is
        saturated; then 80 % and 2× the knee."""
        ladder, rate, knee = [], FIRST_RATE, None
        while rate <= TOP_RATE:
            # At least MIN_REQUESTS per step: at a few requests/s a p99 would be the slowest one.
            seconds = min(MAX_STEP_S, max(self.seconds, MIN_REQUESTS / rate))
            step = self.run(url, model, {}, SLOW_UPSTREAM_S, rate=rate, warmup_s=2 * SLOW_UPSTREAM_S, seconds=seconds)
            ladder.append(step.summary())
            print(f"   {model} at {rate:g}/s: {_brief(step)}", flush=True)
            if knee is None and step.past_knee(BOUND_MS):
                knee = rate
            if step.saturated():
                break
            rate = round(rate * STEP)
        out: dict[str, Any] = {"ladder": ladder, "knee_per_s": knee}
        if knee is not None:
            for name, factor in (("at_80_percent", 0.8), ("at_2x", 2.0)):
                run = self.run(url, model, {}, SLOW_UPSTREAM_S, rate=round(factor * knee), warmup_s=4.0)
                out[name] = run.summary()
                print(f"   {model} at {factor:g}× the knee: {_brief(run)}", flush=True)
        return out


def _brief(run: Measured) -> str:
    r = run.result
    shed = r.shed_with_retry_after + r.shed_without_retry_after
    overhead = f"{run.overhead_ms('p50')}/{run.overhead_ms('p99')}"
    replicas = f", replicas {run.replicas}" if run.replicas else ""
    return f"overhead p50/p99 {overhead} ms, {r.answered} answered, {shed} shed, {r.failed} failed{replicas}"


def minilm(bench: Knee) -> dict[str, float]:
    """One MiniLM forward of one prompt, and per prompt in batches as served, on the Embedding
    replica's single torch thread."""
    encoder = limits.warm_encoder(bench.prompts, torch_threads=1)
    served = limits.served_batch_rates(encoder, bench.prompts)["as served"]
    torch.set_num_threads(os.cpu_count() or 1)
    return {
        "one_forward_ms": round(limits.one_forward_ms(encoder, bench.prompts), 2),
        "batched_ms": round(1000 / served, 2),
    }


def peer(bench: Knee) -> None:
    with peer_server(PEER_VENV, "random", bench.upstream.base_url) as (url, pid):
        chat, own, model = url + "/v1/chat/completions", {pid: "RouteLLM 0.2.0 server"}, "router-random-0.5"
        bench.results["peer_random"] = {
            "open": bench.open_cpu(chat, model, own),
            "closed": bench.closed_cpu(chat, model, own),
        }


def running_replicas() -> dict[str, int]:
    """Each deployment's running replicas now: autoscaling under load shows in the figures."""
    from ray import serve

    deployments = serve.status().applications["router"].deployments
    return {name: d.replica_states.get("RUNNING", 0) for name, d in deployments.items()}


def service(bench: Knee, routers: list[str], workdir: Path) -> None:
    """Each router on a fresh deployment of the shipped graph (replicas that one router's runs
    scaled up would otherwise carry into the next one's): the light runs first, then the rising
    load, as a service sees its traffic grow, then the saturating closed loop."""
    for router in routers:
        print(f"-- {router}", flush=True)
        with deployed(shipped_config(bench.upstream.base_url, (router,)), workdir / router) as cluster:
            chat, model = cluster.url + "/v1/chat/completions", f"router-{router}-0.5"
            bench.replicas = running_replicas
            out: dict[str, Any] = {"idle_cpu_ms_per_s": bench.idle_cpu()}
            out["open"] = bench.open_cpu(chat, model, {})
            bench.upstream.behave("ok", record=False)
            out["first_token_ms"] = first_token_ms(chat, bench.bodies(model))
            out |= bench.knee(chat, model)
            out["closed"] = bench.closed_cpu(chat, model, {})
            bench.results[router] = out
            bench.replicas = None


def direct(bench: Knee) -> None:
    """The fake upstream alone: its time to first token, and k6 offering it the top rate of the
    service's runs under the 2 s upstream."""
    url = bench.upstream.base_url + "/chat/completions"
    bench.upstream.behave("ok", record=False)
    top = max(
        (r.get("at_2x", {}).get("offered_per_s") or 0 for r in bench.results.values() if isinstance(r, dict)), default=0
    )
    bench.results["direct"] = {
        "first_token_ms": first_token_ms(url, bench.bodies("strong")),
        "slow_upstream_top_rate": bench.run(
            url, "strong", {}, SLOW_UPSTREAM_S, rate=max(top, TOP_RATE), warmup_s=4.0
        ).summary(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--routers", nargs="+", default=["random", "mf"], choices=["random", "mf", "sw_ranking"])
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each measured run")
    parser.add_argument("--no-peer", action="store_true", help="leave RouteLLM 0.2.0's server out")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "load")
    parser.add_argument("--report-only", action="store_true", help="the report and plot of --out's results, again")
    args = parser.parse_args()
    if args.report_only:
        results = json.loads((args.out / "results.json").read_text())
        write_plots(results, args.out)
        print_and_write(report(results), "bench.knee", args.out / "report.md")
        return
    upstream = FakeUpstream("upstream")
    bench = Knee(args.seconds, upstream)
    bench.results["machine"] = {
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "seconds": args.seconds,
        "environment": {k: v for k, v in os.environ.items() if k.startswith("RAY_SERVE_")},
    }
    try:
        print("-- MiniLM in one process", flush=True)
        bench.results["minilm"] = minilm(bench)
        if not args.no_peer:
            print("-- RouteLLM 0.2.0", flush=True)
            peer(bench)
        with tempfile.TemporaryDirectory() as tmp:
            service(bench, args.routers, Path(tmp))
        print("-- the upstream directly", flush=True)
        direct(bench)
    finally:
        upstream.stop()
    write_results(bench.results, report(bench.results), "bench.knee", args.out)
    write_plots(bench.results, args.out)
    print(f"wrote {args.out / 'results.json'} and {args.out / 'load.png'}")


if __name__ == "__main__":
    main()
