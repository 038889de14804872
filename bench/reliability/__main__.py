"""Prints the reliability report (what it holds: :mod:`bench.reliability`)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.reliability.apis import CHAT, MESSAGES, RESPONSES
from bench.reliability.checks import keys_in_logs, request_id_round_trip, scrape_metrics
from bench.reliability.outcomes import Tally
from bench.reliability.scenarios import (
    FAULTS,
    both_down,
    malformed_requests,
    one_upstream_failing,
    overload,
    replica_killed_under_load,
    stream_cut_midway,
    unauthenticated,
)
from bench.reliability.service import METRICS, ROUTING_RETRIES, Service, running_service


def every_scenario(requests: int, concurrency: int) -> Iterator[Callable[[Service], Tally]]:
    """Every scenario of the report, in order, as a call on the running service."""
    for failing in ("strong", "weak"):
        for fault in FAULTS:
            for stream in (False, True) if not fault.startswith("cut") else (True,):
                yield lambda s, f=fault, w=failing, st=stream: one_upstream_failing(s, f, w, st, requests, concurrency)
    for api in (RESPONSES, MESSAGES):
        for fault, stream in (("http_500", False), ("http_500", True), ("cut_before_first_token", True)):
            yield lambda s, a=api, f=fault, st=stream: one_upstream_failing(
                s, f, "strong", st, requests, concurrency, a
            )
    for api in (CHAT, RESPONSES, MESSAGES):
        yield lambda s, a=api: stream_cut_midway(s, requests, concurrency, a)
    for fault in ("http_500", "hang", "refused"):
        for stream in (False, True):
            yield lambda s, f=fault, st=stream: both_down(s, f, st, requests, concurrency)
    for deployment in ("Router-mf", "Embedding"):
        yield lambda s, d=deployment: replica_killed_under_load(s, d, 6 * requests, concurrency)
    yield lambda s: overload(s, 40)
    yield malformed_requests
    yield unauthenticated


def print_row(tally: Tally) -> None:
    row = tally.row()

    def fmt(counts: dict[str, int]) -> str:
        return ", ".join(f"{k} ×{v}" for k, v in sorted(counts.items())) or "—"

    print(
        f"| {row['scenario']} | {row['sent']} | {row['answered']} | {fmt(row['failed'])} | "
        f"{fmt(row['fallbacks'])} | {row['p50_s']:.2f} | {row['max_s']:.2f} |",
        flush=True,
    )


def print_problems(tallies: list[Tally]) -> None:
    problems = [(t.scenario, p) for t in tallies for p in t.problems]
    print(f"\ncontract problems: {len(problems)}")
    for scenario, problem in problems:
        print(f"  {scenario}: {problem}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="the service under failing upstreams, lost replicas, bad requests and missing keys"
    )
    parser.add_argument("--requests", type=int, default=16, help="requests per fault scenario")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rl-", dir="/tmp") as tmp, running_service(Path(tmp)) as service:
        print(f"service up in {time.monotonic() - started:.0f} s at {service.url}\n", file=sys.stderr)
        print("| scenario | sent | answered | failed (by reason) | fallbacks (by reason) | p50 s | max s |")
        print("|---|---:|---:|---|---|---:|---:|")
        tallies = []
        for scenario in every_scenario(args.requests, args.concurrency):
            tallies.append(scenario(service))
            print_row(tallies[-1])
        print_problems(tallies)
        metrics = scrape_metrics(service)
        print("\nmetrics at " + service.metrics_url.replace(service.metrics_url.split("/metrics")[0], "<node>"))
        for name in (*METRICS, ROUTING_RETRIES):
            print(f"  {name}: {metrics.get(name, 0):g}")
        request_id = request_id_round_trip(service)
        print(f"\nx-request-id: echoed {request_id['echoed']}, ingress log lines {request_id['log_lines']}")
        keys = keys_in_logs(service)
        print(f"API keys found in logs: {keys}")
        print(f"\nwall time: {time.monotonic() - started:.0f} s")
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "scenarios": [t.row() for t in tallies],
                        "metrics": metrics,
                        "request_id": request_id,
                        "keys_in_logs": keys,
                    },
                    indent=2,
                )
            )


if __name__ == "__main__":
    main()
