"""The applications the tests and benchmarks serve: ``args`` with upstreams on fake servers, and
Serve config files' content around them."""

from __future__ import annotations

from typing import Any

import yaml

from routing.config import load_app_config
from testing import ROOT
from testing.fake_upstream import FakeUpstream


def on_fake(server: FakeUpstream, model: str, **fields: Any) -> dict[str, Any]:
    """An upstream entry for the OpenAI-compatible API of ``server``, naming its model ``model``."""
    return {"backend": "openai", "model": model, "base_url": server.base_url, **fields}


def fake_pair_args(strong: FakeUpstream, weak: FakeUpstream, **overrides: Any) -> dict[str, Any]:
    """Application args with both upstreams on fake servers, named 'big' and 'small'."""
    timeouts = {"timeouts": {"total_s": 5}}
    args: dict[str, Any] = {
        "upstreams": {"strong": on_fake(strong, "big", **timeouts), "weak": on_fake(weak, "small", **timeouts)},
        "routers": {"random": {"type": "random", "seed": 0}, "mf": {"type": "mf"}},
    }
    args.update(overrides)
    return args


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
    wanted = {"Ingress", "LLM-strong", "LLM-weak", *(f"Router-{name}" for name in routers)}
    if load_app_config(args).needs_embeddings:  # the graph has no Embedding deployment otherwise
        wanted.add("Embedding")
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
