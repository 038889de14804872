"""The service's HTTP API over one engine: OpenAI's chat completions (with the routing and health
routes), and two front doors for agents, each routed like a chat completion of the same
conversation: OpenAI's Responses API, and Anthropic's Messages API (errors in Anthropic's shape,
which the app's handlers choose by path; keys may come as ``x-api-key``)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any, Protocol, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from deployments.openai_http import MESSAGES_PATH, IngressState, hints_of, log_outcome, openai_app
from routing.errors import InvalidRequest
from routing.serving.conversation import Hints
from routing.serving.engine import Outcome, RoutingEngine
from routing.serving.headers import route_headers
from routing.serving.messages.protocol import MessagesRequest
from routing.serving.messages.serving import MessagesServing
from routing.serving.overload import Admission
from routing.serving.responses.protocol import ResponsesRequest
from routing.serving.responses.serving import ResponsesServing

# Every version the Messages API has had keeps the shape served here; a client names its own.
API_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}")
B = TypeVar("B", contravariant=True)


class FrontDoor(Protocol[B]):
    async def create(self, request: B, raw: dict[str, Any], hints: Hints) -> tuple[Outcome, dict[str, Any]]: ...

    async def stream(self, request: B, raw: dict[str, Any], hints: Hints) -> tuple[Outcome, AsyncIterator[str]]: ...


def service_app(engine: RoutingEngine, state: IngressState, admission: Admission | None = None) -> FastAPI:
    app = openai_app(engine, state, admission)
    responses, messages = ResponsesServing(engine), MessagesServing(engine)

    @app.post("/v1/responses")
    async def create_response(body: ResponsesRequest, request: Request) -> Response:
        return await answer(responses, body, body.stream, request)

    @app.post(MESSAGES_PATH)
    async def create_message(body: MessagesRequest, request: Request) -> Response:
        version = request.headers.get("anthropic-version")
        if version is not None and not API_VERSION.fullmatch(version):
            raise InvalidRequest(f"anthropic-version: '{version}' is not an API version (a date such as 2023-06-01)")
        return await answer(messages, body, body.stream, request)

    return app


async def answer(door: FrontDoor[B], body: B, stream: bool, request: Request) -> Response:
    """The front door's answer, whole or as its event stream, with the routing headers. The body
    as it came (already read, and valid) goes along for an upstream that takes it unchanged."""
    hints, raw = hints_of(request), await request.json()
    if stream:
        outcome, events = await door.stream(body, raw, hints)
        log_outcome(outcome)
        headers = route_headers(outcome) | {"cache-control": "no-cache"}
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)
    outcome, whole = await door.create(body, raw, hints)
    log_outcome(outcome)
    return JSONResponse(whole, headers=route_headers(outcome))
