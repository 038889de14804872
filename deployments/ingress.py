"""The OpenAI-compatible HTTP front door.

Every response that is not a success is OpenAI's error JSON; routing is visible in the
``x-route-*`` headers of every chat completion.
"""

import json
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.exceptions import HTTPException

from deployments.handles import HandleBackend, HandleEmbedder, HandleScorer
from routing.auth import ApiKeys
from routing.config import AppConfig, ConfigError, load_user_config
from routing.engine import Outcome, RoutingEngine
from routing.errors import ServiceError, Unauthorized
from routing.protocol import ChatCompletionChunk, ChatCompletionRequest, ErrorBody, ErrorResponse

logger = logging.getLogger("ray.serve")

app = FastAPI(
    title="routellm-serve", summary="OpenAI-compatible chat completions routed between a strong and a weak model"
)


def error_response(
    status: int, message: str, error_type: str, param: str | None = None, code: str | None = None
) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(message=message, type=error_type, param=param, code=code))
    return JSONResponse(body.model_dump(), status_code=status)


def _field_path(loc: tuple[Any, ...], body: Any) -> str | None:
    """The client's own path to the bad value, e.g. ``messages[0].role``.

    Pydantic's locations also name union branches (``str``, ``list[...]``, tags); walking the
    submitted body alongside the location keeps only the parts that really index into it.
    """
    parts: list[Any] = []
    node = body
    steps = [p for p in loc if p != "body"]
    for i, part in enumerate(steps):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        elif not (i == len(steps) - 1 and isinstance(node, dict)):
            continue  # a union branch's label, not a key of the body
        parts.append(part)
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
    return text or None


def _describe(errors: list[dict[str, Any]], body: Any) -> tuple[str, str | None]:
    by_path: dict[str | None, list[str]] = {}
    for error in errors:
        path = _field_path(tuple(error["loc"]), body)
        if error["type"] == "json_invalid":
            reason = error.get("ctx", {}).get("error", "decode error")
            return f"the request body is not valid JSON ({reason})", None
        if error["type"] == "extra_forbidden":
            message = f"Unrecognized request argument supplied: {path}"
        elif path is None:
            message = "the request body must be a JSON object (Content-Type: application/json)"
        else:
            message = f"'{path}': " + str(error["msg"]).removeprefix("Value error, ")
        if message not in by_path.setdefault(path, []):
            by_path[path].append(message)
    first = next(iter(by_path), None)
    messages = [m for ms in by_path.values() for m in ms]
    return "; ".join(messages[:5]) or "invalid request", first


@app.middleware("http")
async def _authenticate(request: Request, call_next: Any) -> Any:
    # Before the body is read or validated: a caller without a key learns nothing of the API.
    keys: ApiKeys | None = getattr(request.app.state, "api_keys", None)
    if keys is not None and request.url.path.startswith("/v1/"):
        try:
            keys.check(request.headers.get("authorization"))
        except Unauthorized as exc:
            return error_response(exc.status_code, exc.message, exc.error_type, code=exc.code)
    return await call_next(request)


@app.exception_handler(RequestValidationError)
async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    message, param = _describe(list(exc.errors()), exc.body)
    return error_response(400, message, "invalid_request_error", param=param, code="invalid_request")


@app.exception_handler(ServiceError)
async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
    return error_response(exc.status_code, exc.message, exc.error_type, exc.param, exc.code)


@app.exception_handler(HTTPException)
async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    error_type = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    return error_response(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", error_type)


@app.exception_handler(Exception)
async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal error in the router service", "internal_error")


def route_headers(outcome: Outcome) -> dict[str, str]:
    decision = outcome.decision
    headers = {"x-route-target": decision.target if decision else outcome.model}
    if decision is not None:
        headers |= {
            "x-route-router": decision.router,
            "x-route-score": f"{decision.score:.6f}",
            "x-route-threshold": f"{decision.threshold:g}",
        }
        if decision.strong_percent is not None:
            headers["x-route-strong-percent"] = f"{decision.strong_percent:g}"
    if outcome.fallback:
        headers["x-route-fallback"] = outcome.fallback
    return headers


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
        embedder = HandleEmbedder(embedding, config.embedding.model_id) if embedding is not None else None
        self.engine = RoutingEngine(
            config,
            embedder,
            {name: HandleScorer(handle) for name, handle in routers.items()},
            {key: HandleBackend(handle, config.upstreams[key].model) for key, handle in llms.items()},
        )

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
            return StreamingResponse(
                server_sent_events(chunks),
                media_type="text/event-stream",
                headers=route_headers(outcome) | {"cache-control": "no-cache"},
            )
        outcome, completion = await self.engine.complete(body)
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
        body: dict[str, Any] = {"status": "ok", "upstreams": upstreams}
        if self.user_config_error:
            body["user_config_error"] = self.user_config_error
        return JSONResponse(body)
