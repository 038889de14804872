"""The OpenAI-compatible front door: one Serve deployment around the routing engine.

Routing is visible in the ``x-route-*`` headers of every chat completion; a request that left
its first-choice model says why in ``x-route-fallback``.
"""

import json
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import JSONResponse, StreamingResponse
from ray import serve
from ray.serve.handle import DeploymentHandle

import deployments.playground  # noqa: F401  (adds /playground to the app)
from deployments.handles import HandleBackend, HandleEmbedder, HandleScorer
from deployments.metrics import ServeTelemetry
from deployments.openai_http import app
from routing.auth import ApiKeys
from routing.config import AppConfig, ConfigError, load_user_config
from routing.engine import Outcome, RoutingEngine
from routing.errors import ServiceError
from routing.headers import route_headers
from routing.protocol import ChatCompletionChunk, ChatCompletionRequest, ErrorBody

logger = logging.getLogger("ray.serve")


def log_outcome(outcome: Outcome) -> None:
    """One line per answered request; Serve adds the request id. Never the prompt, never a key."""
    decision = outcome.decision
    logger.info(
        "routed router=%s score=%s threshold=%s target=%s answered_by=%s fallback=%s",
        decision.router if decision else "-",
        f"{decision.score:.4f}" if decision else "-",
        f"{decision.threshold:g}" if decision else "-",
        decision.target if decision else "-",
        outcome.model,
        outcome.fallback or "-",
    )


async def server_sent_events(chunks: AsyncIterator[ChatCompletionChunk]) -> AsyncIterator[str]:
    # Bytes are already on their way to the client: a failure now ends the stream with an
    # error event in OpenAI's shape instead of switching models.
    try:
        async for chunk in chunks:
            yield f"data: {chunk.model_dump_json(exclude_none=True)}\n\n"
    except ServiceError as exc:
        yield f"data: {json.dumps({'error': exc.to_dict()})}\n\n"
        return
    except Exception:
        logger.exception("stream failed")
        error = ErrorBody(message="internal error in the router service", type="internal_error")
        yield f"data: {json.dumps({'error': error.model_dump()})}\n\n"
        return
    yield "data: [DONE]\n\n"


@serve.deployment(ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=256)
@serve.ingress(app)
class Ingress:
    def __init__(
        self,
        config: AppConfig,
        embedding: DeploymentHandle | None,
        routers: dict[str, DeploymentHandle],
        llms: dict[str, DeploymentHandle],
    ) -> None:
        self.user_config_error: str | None = None
        app.state.api_keys = ApiKeys.load(config.auth, os.environ)
        app.state.max_body_bytes = config.limits.max_body_bytes
        embedder = HandleEmbedder(embedding, config.embedding.model_id) if embedding is not None else None
        self.engine = RoutingEngine(
            config,
            embedder,
            {name: HandleScorer(handle) for name, handle in routers.items()},
            {key: HandleBackend(handle, config.upstreams[key].model) for key, handle in llms.items()},
            ServeTelemetry(),
        )
        app.state.playground = self.engine  # what /playground/settings describes

    def check_health(self) -> None:
        """Re-reads the API keys, so that a rotated Secret file takes effect without a restart.
        A file caught mid-rotation (gone or empty) keeps the keys in force until the next check."""
        try:
            app.state.api_keys = ApiKeys.load(self.engine.config.auth, os.environ)
        except (OSError, ValueError) as exc:
            logger.warning("API keys not reloaded, the previous ones stay in force: %s", exc)

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Serve calls this with the deployment's ``user_config`` at start and on every
        ``serve deploy`` that changes it; the replicas keep running.

        A bad ``user_config`` is refused but not raised: Serve would mark the deployment failed
        and stop answering, while the previous defaults are still good to serve with. The
        refusal is logged and shown by ``/health``."""
        try:
            self.engine.reconfigure(load_user_config(user_config, self.engine.config))
        except ConfigError as exc:
            logger.error("user_config refused, router defaults unchanged: %s", exc)
            self.user_config_error = str(exc)
        else:
            self.user_config_error = None

    @app.post("/v1/chat/completions")
    async def chat_completions(self, body: ChatCompletionRequest) -> Any:
        if body.stream:
            outcome, chunks = await self.engine.stream(body)
            log_outcome(outcome)
            return StreamingResponse(
                server_sent_events(chunks),
                media_type="text/event-stream",
                headers=route_headers(outcome) | {"cache-control": "no-cache"},
            )
        outcome, completion = await self.engine.complete(body)
        log_outcome(outcome)
        return JSONResponse(completion.model_dump(mode="json", exclude_none=True), headers=route_headers(outcome))

    @app.post("/v1/route")
    async def route(self, body: ChatCompletionRequest) -> Any:
        """The decision a chat request would get; takes the same body, calls no model."""
        decision = await self.engine.route(body.model, body.messages)
        return JSONResponse(decision.model_dump(mode="json", exclude_none=True))

    @app.get("/v1/models")
    async def models(self) -> Any:
        return JSONResponse(self.engine.models().model_dump(mode="json"))

    @app.get("/health")
    async def health(self) -> Any:
        upstreams = {
            u.model: "configured" if u.configured else "unconfigured" for u in self.engine.config.upstreams.values()
        }
        breakers = {u.model: u.breaker.state for u in self.engine.upstreams.values()}
        body: dict[str, Any] = {"status": "ok", "upstreams": upstreams, "circuits": breakers}
        if self.user_config_error:
            body["user_config_error"] = self.user_config_error
        return JSONResponse(body)
