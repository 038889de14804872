"""Each Ray Serve setting on its own, against Serve's defaults, in one run.

    python -m bench.serve_settings [--seconds 8] [--out docs/benchmarks/serve_settings.md]

Deploys the shipped graph (``random`` and ``mf``, local MiniLM, both models on one fake
upstream) once per row, each on a fresh private cluster started in a child process with that
row's environment, and measures: ``/v1/route`` (``mf``) and chat through ``random`` and ``mf``,
requests/s at 32 clients; and the p50 of one client on each. The rows: Serve's defaults; the
replica's own event loop for user code and for the handle router; gRPC between replicas; the
service's settings (``routing/serve_env.py``, HAProxy on the HTTP port); those with Serve's
Python proxy in HAProxy's place; and those with Ray's actor calls in place of gRPC between
replicas. Prints the table and writes it to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.tables import print_and_write
from routing.serve_env import SERVE_ENV
from testing import ROOT
from testing.apps import shipped_config
from testing.cluster import deployed
from testing.fake_upstream import FakeUpstream
from testing.load import chat_bodies, run_load, sample_prompts

CLIENTS = 32
# Serve's own defaults, against which each row changes one thing.
DEFAULTS = {
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "0",
    "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0",
    "RAY_SERVE_ENABLE_HA_PROXY": "0",
    "RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE": "1",
}
ROWS: dict[str, dict[str, str]] = {
    "Serve's defaults": {},
    "user code and handle router on the replica's loop": {
        "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0",
        "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "0",
    },
    "gRPC between replicas": {"RAY_SERVE_USE_GRPC_BY_DEFAULT": "1"},
    "the service's settings (serve_env.py)": SERVE_ENV,
    "the service's settings, Serve's Python proxy in HAProxy's place": SERVE_ENV | {"RAY_SERVE_ENABLE_HA_PROXY": "0"},
    "the service's settings, Ray's actor calls in place of gRPC between replicas": SERVE_ENV
    | {"RAY_SERVE_USE_GRPC_BY_DEFAULT": "0"},
}


def measure(seconds: float) -> dict[str, Any]:
    """One row, in this process (whose environment the row set before Ray started)."""
    prompts = sample_prompts()

    def load(url: str, model: str, clients: int) -> dict[str, Any]:
        return run_load(url, chat_bodies(prompts, model), clients, duration_s=seconds, warmup_s=2).summary()

    upstream = FakeUpstream("upstream")
    upstream.behave("ok", record=False)
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            deployed(shipped_config(upstream.base_url, ("random", "mf")), Path(tmp)) as cluster,
        ):
            chat, route = cluster.url + "/v1/chat/completions", cluster.url + "/v1/route"
            return {
                "route_mf_per_s": load(route, "router-mf-0.5", CLIENTS)["requests_per_s"],
                "random_per_s": load(chat, "router-random-0.5", CLIENTS)["requests_per_s"],
                "mf_per_s": load(chat, "router-mf-0.5", CLIENTS)["requests_per_s"],
                "random_one_client_p50_ms": load(chat, "router-random-0.5", 1)["p50_ms"],
                "mf_one_client_p50_ms": load(chat, "router-mf-0.5", 1)["p50_ms"],
            }
    finally:
        upstream.stop()


def run_row(env: dict[str, str], seconds: float) -> dict[str, Any]:
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_SERVE_")} | DEFAULTS | env
    result = subprocess.run(
        [sys.executable, "-m", "bench.serve_settings", "--row", "--seconds", str(seconds)],
        cwd=ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each measured load")
    parser.add_argument("--row", action="store_true", help=argparse.SUPPRESS)  # one row, in a child
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "serve_settings.md")
    args = parser.parse_args()
    if args.row:
        print(json.dumps(measure(args.seconds)))
        return
    rows = {}
    for name, env in ROWS.items():
        print(f"-- {name}", flush=True)
        rows[name] = run_row(env, args.seconds)
    columns = list(next(iter(rows.values())))
    lines = ["| setting | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    lines += [f"| {name} | " + " | ".join(f"{row[c]:g}" for c in columns) + " |" for name, row in rows.items()]
    print_and_write("\n".join(lines) + "\n", "bench.serve_settings", args.out)


if __name__ == "__main__":
    main()
