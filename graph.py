"""The Serve application: one composed graph.

    HTTP ─► Ingress ─► Embedding ─► Router-<name> ─► its candidates in order ─► LLM-<key>
            (OpenAI API)  (prompt → vector)  (checkpoint + calibration table)     (upstream call)
                                                  ▲ the version in service, with its files
            Learner (optional, no route): request log → labels → challenger ┘

Each box is its own deployment, so the router stage scales apart from the upstream calls.
``serve run serve_config.yaml`` calls :func:`build_app` with the ``args`` of that file.
"""

from __future__ import annotations

import os
from typing import Any

from ray.serve import Application

from deployments.embedding import Embedding
from deployments.ingress import Ingress
from deployments.learner import Learner
from deployments.llm_client import LLMClient
from deployments.router import Router
from routing.config import llm_deployment, load_app_config, router_deployment
from routing.serving.preflight import check_routers


def build_app(args: dict[str, Any]) -> Application:
    config = load_app_config(args).resolve_env(os.environ)
    check_routers(config)
    embedding = Embedding.bind(config.embedding) if config.needs_embeddings else None
    learning = config.learner
    learner = Learner.bind(config) if learning else None
    routers = {
        name: Router.options(name=router_deployment(name)).bind(
            name,
            router,
            config.candidates(name),
            config.embedding.model_id,
            learner if learning and learning.router == name else None,
        )
        for name, router in config.routers.items()
    }
    llms = {
        key: LLMClient.options(name=llm_deployment(key)).bind(upstream) for key, upstream in config.upstreams.items()
    }
    return Ingress.bind(config, embedding, routers, llms, learner)
