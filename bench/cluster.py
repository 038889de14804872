"""A private Ray cluster on this machine that deploys a Serve config as ``serve run`` does."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graph_config(args: dict[str, Any], deployments: list[dict[str, Any]], **http_options: Any) -> dict[str, Any]:
    """A Serve config file's content: the graph (``graph:build_app``) as the one application."""
    return {
        "http_options": {"host": "127.0.0.1", **http_options},
        "applications": [
            {
                "name": "router",
                "route_prefix": "/",
                "import_path": "graph:build_app",
                "args": args,
                "deployments": deployments,
            }
        ],
    }


def shipped_config(
    upstream_base_url: str,
    routers: tuple[str, ...] | None = None,
    embedding: dict[str, Any] | None = None,
    file: str = "serve_config.yaml",
) -> dict[str, Any]:
    """A shipped Serve config (``file``), with both models served by the OpenAI-compatible API at
    ``upstream_base_url`` (LLM-weak then gets LLM-strong's deployment options: both are API
    clients), only the ``routers`` named (None: all of them), and optionally another
    ``embedding`` backend."""
    config = yaml.safe_load((ROOT / file).read_text())
    application = config["applications"][0]
    args = application["args"]
    args["upstreams"] = {
        key: {"backend": "openai", "model": key, "base_url": upstream_base_url} for key in ("strong", "weak")
    }
    routers = tuple(args["routers"]) if routers is None else routers
    args["routers"] = {name: args["routers"][name] for name in routers}
    if embedding is not None:
        args["embedding"] = embedding
    options = {d["name"]: d for d in application["deployments"]}
    options["LLM-weak"] = {**options["LLM-strong"], "name": "LLM-weak"}
    wanted = {"Ingress", "Embedding", "LLM-strong", "LLM-weak", *(f"Router-{name}" for name in routers)}
    application["deployments"] = [d for name, d in options.items() if name in wanted]
    return config


def three_model_config(upstream_base_url: str) -> dict[str, Any]:
    """``serve_config.three_models.yaml`` with its three models served by the OpenAI-compatible
    API at ``upstream_base_url``; each keeps the name its router scores it by."""
    config = yaml.safe_load((ROOT / "serve_config.three_models.yaml").read_text())
    upstreams = config["applications"][0]["args"]["upstreams"]
    for key, upstream in upstreams.items():
        kept = {k: upstream[k] for k in ("router_model_id", "price") if k in upstream}
        upstreams[key] = {"backend": "openai", "model": key, "base_url": upstream_base_url, **kept}
    return config


@dataclass
class Cluster:
    url: str
    metrics_url: str


@contextmanager
def deployed(config: dict[str, Any], workdir: Path, health_path: str = "/health") -> Iterator[Cluster]:
    """``config`` (a Serve config file's content) running on a new local cluster with its metrics
    endpoint on; the HTTP port is chosen here. Shut down on exit."""
    import ray
    from ray.serve._private.api import serve_start
    from ray.serve.schema import ServeDeploySchema

    http_port, metrics_port = free_port(), free_port()
    config = {**config, "http_options": {**config.get("http_options", {}), "port": http_port}}
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        _metrics_export_port=metrics_port,
        _temp_dir=str(workdir / "ray"),
        logging_level="ERROR",
        log_to_driver=False,
    )
    try:
        client = serve_start(http_options=config["http_options"])
        client.deploy_apps(ServeDeploySchema.model_validate(config), _blocking=True)
        cluster = Cluster(entry_url(client.get_serve_details(), http_port), f"http://127.0.0.1:{metrics_port}/metrics")
        wait_until_healthy(cluster.url + health_path)
        yield cluster
    finally:
        ray.shutdown()


def entry_url(details: dict[str, Any], http_port: int) -> str:
    """Where a client reaches the application: under direct ingress, the ingress replica's own
    port (skipping the proxy); otherwise the proxy's."""
    if os.environ.get("RAY_SERVE_ENABLE_DIRECT_INGRESS") == "1":
        for group in details.get("target_groups", []):
            if group["protocol"] == "HTTP" and group["route_prefix"] == "/" and group["targets"]:
                return f"http://127.0.0.1:{group['targets'][0]['port']}"
    return f"http://127.0.0.1:{http_port}"


def wait_until_healthy(url: str, deadline_s: float = 240, status: int = 200) -> None:
    """Polls ``url`` with GET until it answers ``status``."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=10).status_code == status:
                return
        except httpx.TransportError:
            pass
        time.sleep(1)
    raise RuntimeError(f"{url} did not answer {status} in time")
