"""The OpenAI-compatible front door: one Serve deployment around the routing engine.

Its HTTP app is built for its engine when the replica starts (``__serve_build_asgi_app__``):
the service's API (:func:`~deployments.service_app.service_app`: chat completions, Responses,
Messages) and the playground's routes.
"""

from __future__ import annotations

import asyncio
import logging
import os

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from ray import serve
from ray.serve.handle import DeploymentHandle

from deployments.handles import HandleBackend, HandleEmbedder, HandleRanker
from deployments.metrics import ServeTelemetry
from deployments.openai_http import IngressState, chat_response, error_response, route_response
from deployments.playground import add_playground
from deployments.service_app import service_app
from routing.config import AppConfig
from routing.protocol import ChatCompletionRequest
from routing.serving.auth import ApiKeys
from routing.serving.conversation import conversation_of
from routing.serving.engine import RoutingEngine
from routing.serving.overload import Admission

logger = logging.getLogger("ray.serve")
# Longer than the router stage takes to load on two cores (all six routers and MiniLM); a router
# stage that takes longer does not keep the service from answering.
ROUTER_STAGE_WAIT_S = 120.0
LEARNER_STATUS_WAIT_S = 5.0
# How long each upstream has to answer the key check (its model list); one slower than this is
# not reported, its calls will say what is wrong.
KEY_CHECK_WAIT_S = 10.0


@serve.deployment(ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=256)
@serve.ingress()
class Ingress:
    async def __init__(
        self,
        config: AppConfig,
        embedding: DeploymentHandle | None,
        routers: dict[str, DeploymentHandle],
        llms: dict[str, DeploymentHandle],
        learner: DeploymentHandle | None = None,
    ) -> None:
        """Ready once every part of the request path answers (or after :data:`ROUTER_STAGE_WAIT_S`),
        so that a starting service routes its first requests rather than falling back while
        models load."""
        self.state = IngressState(ApiKeys.load(config.auth, os.environ))
        self.learner = learner
        embedder = HandleEmbedder(embedding, config.embedding.model_id) if embedding is not None else None
        rankers = {name: HandleRanker(handle) for name, handle in routers.items()}
        telemetry = ServeTelemetry()
        self.engine = RoutingEngine(
            config,
            embedder,
            rankers,
            {key: HandleBackend(handle, config.upstreams[key].model) for key, handle in llms.items()},
            telemetry,
        )
        stages = [*rankers.values(), *([embedder] if embedder else [])]
        self.admission = Admission(
            config.limits.max_queue_delay_ms / 1000, lambda: max((stage.queued_s() for stage in stages), default=0.0)
        )
        telemetry.watch_circuits(lambda: {u.model: u.breaker.state for u in self.engine.upstreams.values()})
        missing = await self.engine.unready(ROUTER_STAGE_WAIT_S)
        self.state.ready = not missing
        if missing:
            logger.warning(
                "taking requests before %s answered: routing falls back by fallback.on_routing_error until then",
                ", ".join(missing),
            )
        await self._check_upstream_keys()
        if self.state.api_keys.problem:
            logger.error("not ready: %s", self.state.api_keys.problem)

    def __serve_build_asgi_app__(self) -> FastAPI:
        app = service_app(self.engine, self.state, self.admission)
        add_playground(app, self.engine, self.state)
        learner = self.learner

        @app.get("/health/learner")
        async def learner_status() -> Response:
            """What the learner has done (404 when the application has none)."""
            if learner is None:
                return error_response(404, "this application has no learner", "not_found_error")
            try:
                status = await asyncio.wait_for(learner.status.remote(), LEARNER_STATUS_WAIT_S)
            except Exception as exc:  # a learner replica restarting or gone: the service itself is fine
                message = f"the learner did not answer: {type(exc).__name__}"
                return error_response(503, message, "service_unavailable", headers={"retry-after": "5"})
            return JSONResponse(status.model_dump(mode="json") if status else {"status": "starting"})

        return app

    async def check_health(self) -> None:
        """Re-reads the API keys, so that a rotated Secret file takes effect without a restart.
        A file caught mid-rotation (gone or empty) keeps the keys in force until the next check.
        Asks again the upstreams that refused their keys, until they accept them (an LLM client
        restarted with a new Secret)."""
        try:
            self.state.api_keys = ApiKeys.load(self.engine.config.auth, os.environ)
        except (OSError, ValueError) as exc:
            logger.warning("API keys not reloaded, the previous ones stay in force: %s", exc)
        if self.state.rejected_keys:
            await self._check_upstream_keys()

    async def _check_upstream_keys(self) -> None:
        rejected = await self.engine.rejected_keys(KEY_CHECK_WAIT_S)
        for model, why in rejected.items():
            if model not in self.state.rejected_keys:
                logger.error("upstream '%s' refuses its API key, its requests fall back: %s", model, why)
        self.state.rejected_keys = rejected

    async def chat_completions(self, body: ChatCompletionRequest) -> Response:
        """For a caller holding a handle (another Serve application): the HTTP route's answer."""
        return await chat_response(self.engine, body, conversation_of(body))

    async def route(self, body: ChatCompletionRequest) -> Response:
        """For a caller holding a handle: the routing decision, as ``POST /v1/route`` answers it."""
        return await route_response(self.engine, body, conversation_of(body))
