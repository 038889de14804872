"""The service under test: ``serve_config.yaml`` on a private cluster, pointed at two fake
upstreams, with short time limits and prices."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.reliability.apis import chat
from testing import ROOT
from testing.apps import on_fake
from testing.cluster import deployed
from testing.fake_upstream import FakeUpstream

LIMITS = {"connect_s": 1.0, "first_token_s": 1.0, "total_s": 2.0}
RETRY = {"max_retries": 2, "backoff_initial_s": 0.02, "backoff_max_s": 0.2}
BREAKER = {"failure_threshold": 5, "cooldown_s": 1.0}
TO_STRONG, TO_WEAK = "router-random-0", "router-random-1"  # random scores are in [0, 1)
METRICS = (
    "ray_routellm_decisions_total",
    "ray_routellm_router_score",
    "ray_routellm_strong_share",
    "ray_routellm_fallbacks_total",
    "ray_routellm_upstream_latency_seconds",
    "ray_routellm_upstream_errors_total",
    "ray_routellm_upstream_retries_total",
    "ray_routellm_tokens_total",
    "ray_routellm_cost_usd_total",
    "ray_routellm_cost_all_strong_usd_total",
    "ray_routellm_cost_saved_usd_total",
)
# Counted only when a replica dies with a routing step in flight, which a kill does not always catch.
ROUTING_RETRIES = "ray_routellm_routing_retries_total"


@dataclass
class Service:
    url: str
    metrics_url: str
    workdir: Path
    api_key: str
    upstream_key: str
    strong: FakeUpstream
    weak: FakeUpstream

    def headers(self, **extra: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.api_key}", **extra}

    def reset(self) -> None:
        """Healthy upstreams, closed circuits: each scenario starts from the same state."""
        self.strong.reset()
        self.weak.reset()
        time.sleep(BREAKER["cooldown_s"] + 0.1)
        with httpx.Client(base_url=self.url, timeout=30, headers=self.headers()) as client:
            for model in ("big", "small"):  # a successful trial call closes a half-open circuit
                client.post("/v1/chat/completions", json=chat(model)).raise_for_status()
            circuits = client.get("/health").json()["circuits"]
        assert set(circuits.values()) == {"closed"}, circuits
        self.strong.reset()
        self.weak.reset()


def application_config(strong: FakeUpstream, weak: FakeUpstream, keys_file: Path) -> dict[str, Any]:
    """``serve_config.yaml`` with both models on the fake upstreams and two mf router replicas."""
    config = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    app = config["applications"][0]
    common = {"timeouts": LIMITS, "retry": RETRY, "circuit_breaker": BREAKER}
    app["args"]["upstreams"] = {
        "strong": on_fake(
            strong,
            "big",
            api_key_env="RELIABILITY_STRONG_KEY",
            price={"input_per_million": 2.5, "output_per_million": 10.0},
            **common,
        ),
        "weak": on_fake(weak, "small", price={"input_per_million": 0.15, "output_per_million": 0.6}, **common),
    }
    app["args"]["routers"] = {"random": {"type": "random"}, "mf": {"type": "mf"}}
    app["args"]["auth"] = {"api_keys_file": str(keys_file)}
    app["deployments"] = [
        {"name": "Ingress", "max_ongoing_requests": 256, "ray_actor_options": {"num_cpus": 0.2}},
        {"name": "Embedding", "ray_actor_options": {"num_cpus": 0.3}},
        {"name": "Router-random", "ray_actor_options": {"num_cpus": 0.05}},
        {"name": "Router-mf", "num_replicas": 2, "ray_actor_options": {"num_cpus": 0.05}},
        {"name": "LLM-strong", "ray_actor_options": {"num_cpus": 0.1}},
        # A small queue in front of the weak model, so that the overload scenario can fill it.
        {
            "name": "LLM-weak",
            "max_ongoing_requests": 8,
            "max_queued_requests": 8,
            "ray_actor_options": {"num_cpus": 0.1},
        },
    ]
    return config


@contextmanager
def running_service(workdir: Path) -> Iterator[Service]:
    """A private Ray cluster deploying the config as ``serve run`` does, against fresh fake upstreams."""
    strong, weak = FakeUpstream("strong"), FakeUpstream("weak")
    api_key, upstream_key = f"sk-ingress-{secrets.token_hex(12)}", f"sk-upstream-{secrets.token_hex(12)}"
    keys_file = workdir / "api-keys"
    keys_file.write_text(f"# rotated monthly\n{api_key}\n")
    config = application_config(strong, weak, keys_file)
    config["logging_config"] = {"encoding": "JSON", "log_level": "INFO", "logs_dir": str(workdir / "serve-logs")}
    # Replicas inherit the environment of the cluster this process starts: the strong model's key
    # reaches its replica only, as a Kubernetes Secret would.
    os.environ["RELIABILITY_STRONG_KEY"] = upstream_key
    try:
        with deployed(config, workdir) as cluster:
            yield Service(
                url=cluster.url,
                metrics_url=cluster.metrics_url,
                workdir=workdir,
                api_key=api_key,
                upstream_key=upstream_key,
                strong=strong,
                weak=weak,
            )
    finally:
        strong.stop()
        weak.stop()
        os.environ.pop("RELIABILITY_STRONG_KEY", None)
