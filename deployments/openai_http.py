"""The ingress's HTTP layer: :func:`openai_app` builds the FastAPI app for one engine, with its
guards and OpenAI's error shape.

Routing is visible in the ``x-route-*`` headers of every chat completion; a request that left
its first-choice model says why in ``x-route-fallback``. Every response that is not a success is
OpenAI's error JSON. Before a handler runs, a request passes two guards: the API key (before
anything else, so a caller without one learns nothing of the API) and the body size (checked on
``Content-Length`` and again while the body streams in).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from routing.errors import PayloadTooLarge, ServiceError, ServiceUnavailable, Unauthorized
from routing.protocol import ChatCompletionChunk, ChatCompletionRequest, ErrorBody, ErrorResponse
from routing.serving.auth import ApiKeys, bearer_key
from routing.serving.conversation import SESSION_HEADER, STICKINESS_HEADER, ConversationRef, Hints, conversation_of
from routing.serving.engine import Outcome, RoutingEngine
from routing.serving.headers import decision_headers, error_headers, route_headers
from routing.serving.messages.protocol import error_object
from routing.serving.overload import Admission
from routing.serving.validation import invalid_request

logger = logging.getLogger("ray.serve")
MESSAGES_PATH = "/v1/messages"
ROUTER_STATE_TIMEOUT_S = 2.0
READY_TIMEOUT_S = 5.0


@dataclass
class IngressState:
    """What changes on a running ingress without a restart: the API keys in force (re-read at
    each health check), the upstreams that refuse their own keys (model → why), and whether
    every part of the request path has answered (then it stays ready: a replica lost later is
    Serve's to restart and the fallbacks' to cover)."""

    api_keys: ApiKeys
    rejected_keys: dict[str, str] = field(default_factory=dict)
    ready: bool = False
    _probe: asyncio.Task[list[str]] | None = field(default=None, repr=False)

    async def unready(self, engine: RoutingEngine) -> list[str]:
        """What the request path still waits for; concurrent health checks share one probe, so a
        burst of them (every kubelet, every load balancer) costs one routing step per router."""
        if self.ready:
            return []
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(engine.unready(READY_TIMEOUT_S))
        waiting = await asyncio.shield(self._probe)
        self.ready = self.ready or not waiting
        return waiting


def openai_app(engine: RoutingEngine, state: IngressState, admission: Admission | None = None) -> FastAPI:
    """The OpenAI-compatible API over ``engine``: chat completions, routing decisions, models,
    and the service's health (``/health``) and its routers' (``/health/routers``); with an
    ``admission``, an API request that the ingress cannot start soon is refused first."""
    app = FastAPI(
        title="routellm-serve", summary="OpenAI-compatible chat completions routed between a strong and a weak model"
    )
    app.add_middleware(BodyLimit, max_bytes=engine.config.limits.max_body_bytes)
    app.add_middleware(Authenticated, state=state)
    if admission is not None:  # the outermost: a refused request costs no more than its headers
        app.add_middleware(Admitted, admission=admission)
    register_error_handlers(app)

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
        hints = hints_of(request)
        conversation = conversation_of(body, hints.session, hints.caller, hints.stickiness)
        return await chat_response(engine, body, conversation, hints.key_name)

    @app.post("/v1/route")
    async def route(body: ChatCompletionRequest, request: Request) -> Response:
        """The decision a chat request would get; takes the same body, calls no model."""
        return await route_response(engine, body, conversation_for(request, body))

    @app.get("/v1/models")
    async def models() -> Response:
        return JSONResponse(engine.models().model_dump(mode="json"))

    @app.get("/health")
    async def health() -> Response:
        body = await health_body(engine, state)
        return JSONResponse(body, status_code=200 if body["status"] == "ready" else 503)

    @app.get("/health/live")
    async def live() -> Response:
        return JSONResponse({"status": "live"})

    @app.get("/health/routers")
    async def routers() -> Response:
        return JSONResponse(await routers_body(engine))

    return app


def hints_of(request: Request) -> Hints:
    """What ``request``'s headers say of its conversation: its ``x-session-id``, its caller (a
    digest of its key: conversations of different keys never share a pin or a stored response),
    and the stickiness its ``x-route-stickiness`` asks for."""
    headers = request.headers
    key = bearer_key(headers.get("authorization")) or headers.get("x-api-key")
    caller = hashlib.sha256(key.encode()).hexdigest() if key else None
    key_name = getattr(request.state, "key_name", None)
    return Hints(headers.get(SESSION_HEADER), caller, headers.get(STICKINESS_HEADER), key_name)


def conversation_for(request: Request, body: ChatCompletionRequest) -> ConversationRef:
    """The conversation ``body`` belongs to, by its headers, its own ids or its opening."""
    hints = hints_of(request)
    return conversation_of(body, hints.session, hints.caller, hints.stickiness)


async def chat_response(
    engine: RoutingEngine,
    body: ChatCompletionRequest,
    conversation: ConversationRef | None = None,
    key_name: str | None = None,
) -> Response:
    """``key_name``: the name of the API key that asked, for the request log and the metrics."""
    if body.stream:
        outcome, chunks = await engine.stream(body, conversation, key_name)
        log_outcome(outcome)
        return StreamingResponse(
            server_sent_events(chunks),
            media_type="text/event-stream",
            headers=route_headers(outcome) | {"cache-control": "no-cache"},
        )
    outcome, completion = await engine.complete(body, conversation, key_name)
    log_outcome(outcome)
    return JSONResponse(completion.model_dump(mode="json", exclude_none=True), headers=route_headers(outcome))


async def route_response(
    engine: RoutingEngine, body: ChatCompletionRequest, conversation: ConversationRef | None = None
) -> Response:
    decision = await engine.route(body.model, body.messages, conversation)
    return JSONResponse(decision.model_dump(mode="json", exclude_none=True), headers=decision_headers(decision))


async def health_body(engine: RoutingEngine, state: IngressState) -> dict[str, Any]:
    """``ready`` once a probe prompt got a routing decision from every router and every
    upstream's client answered, and no client key is a published one; ``live`` (with what it
    waits for or why it refuses) before; the upstreams (an upstream refusing its key says so)
    and their circuits, as this ingress sees them."""
    waiting = await state.unready(engine)
    auth_error = state.api_keys.problem
    config = engine.config

    def upstream(model: str, configured: bool) -> str:
        if model in state.rejected_keys:
            return f"key rejected: {state.rejected_keys[model]}"
        return "configured" if configured else "unconfigured"

    body: dict[str, Any] = {
        "status": "ready" if state.ready and auth_error is None else "live",
        **({"waiting_for": waiting} if waiting else {}),
        **({"auth_error": auth_error} if auth_error else {}),
        "upstreams": {u.model: upstream(u.model, u.configured) for u in config.upstreams.values()},
        "circuits": {u.model: u.breaker.state for u in engine.upstreams.values()},
    }
    return body


async def routers_body(engine: RoutingEngine) -> dict[str, Any]:
    """Each router's checkpoint in service, whether it has a calibration table, and why its
    last swap was refused, as the router reports them (one replica's answer)."""
    states = await engine.router_states(timeout_s=ROUTER_STATE_TIMEOUT_S)
    return {
        name: {"error": state}
        if isinstance(state, str)
        else {"checkpoint": state.checkpoint, "calibrated": state.calibrated}
        | ({"swap_error": state.swap_error} if state.swap_error else {})
        | ({"user_config_error": state.user_config_error} if state.user_config_error else {})
        for name, state in states.items()
    }


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


def error_response(
    status: int,
    message: str,
    error_type: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    path: str = "",
) -> JSONResponse:
    """OpenAI's error JSON, or Anthropic's on the Messages API's ``path``."""
    if path.startswith(MESSAGES_PATH):
        return JSONResponse(error_object(status, message).model_dump(), status_code=status, headers=headers)
    body = ErrorResponse(error=ErrorBody(message=message, type=error_type, param=param, code=code))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def service_error_response(exc: ServiceError, path: str = "") -> JSONResponse:
    return error_response(exc.status_code, exc.message, exc.error_type, exc.param, exc.code, error_headers(exc), path)


class BodyLimit:
    """413 for a body over ``max_bytes``, declared or streamed, before it is parsed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.max_bytes
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await service_error_response(_too_large(limit), scope["path"])(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise _too_large(limit)
            return message

        await self.app(scope, counted, send)


AUTH_HEADERS = (b"authorization", b"x-api-key")


class Authenticated:
    """401 for an API request (``/v1/...``) without a key that ``state.api_keys`` (reloaded with
    the config) accepts; the name of the key that asked goes to ``request.state.key_name``. Plain
    ASGI: Starlette's ``BaseHTTPMiddleware`` costs each request a task group and a response stream."""

    def __init__(self, app: ASGIApp, state: IngressState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            headers: dict[bytes, str] = {}
            for name, value in scope["headers"]:  # the first of a repeated header, as Starlette reads it
                if name in AUTH_HEADERS:
                    headers.setdefault(name, value.decode("latin-1"))
            try:
                key_name = self.state.api_keys.check(headers.get(b"authorization"), headers.get(b"x-api-key"))
            except Unauthorized as exc:
                await service_error_response(exc, scope["path"])(scope, receive, send)
                return
            scope.setdefault("state", {})["key_name"] = key_name
        await self.app(scope, receive, send)


class Admitted:
    """503 with ``Retry-After`` for an API request (``POST /v1/...``) that ``admission`` refuses,
    before its body is read; health and the playground are always answered."""

    def __init__(self, app: ASGIApp, admission: Admission) -> None:
        self.app = app
        self.admission = admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].startswith("/v1/"):
            try:
                self.admission.check()
            except ServiceUnavailable as exc:
                await service_error_response(exc, scope["path"])(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the request body is larger than this service takes ({limit} bytes)")


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    return service_error_response(invalid_request(list(exc.errors()), exc.body), request.url.path)


async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
    return service_error_response(exc, request.url.path)


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    error_type = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return error_response(exc.status_code, message, error_type, path=request.url.path)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal error in the router service", "internal_error", path=request.url.path)


def register_error_handlers(target: FastAPI) -> None:
    """Every failure answered in its API's error shape: OpenAI's, or Anthropic's on the Messages API."""
    target.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    target.add_exception_handler(ServiceError, _service_error)  # type: ignore[arg-type]
    target.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    target.add_exception_handler(Exception, _internal_error)
