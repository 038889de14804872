"""The ingress's HTTP layer: the FastAPI app, its guards, and OpenAI's error shape.

Every response that is not a success is OpenAI's error JSON. Before a handler runs, a request
passes two guards: the API key (before anything else, so a caller without one learns nothing of
the API) and the body size (checked on ``Content-Length`` and again while the body streams in).
"""

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from routing.auth import ApiKeys
from routing.errors import PayloadTooLarge, ServiceError, ServiceUnavailable, Unauthorized
from routing.protocol import ErrorBody, ErrorResponse

logger = logging.getLogger("ray.serve")

app = FastAPI(
    title="routellm-serve", summary="OpenAI-compatible chat completions routed between a strong and a weak model"
)


def error_response(
    status: int,
    message: str,
    error_type: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(message=message, type=error_type, param=param, code=code))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def service_error_response(exc: ServiceError) -> JSONResponse:
    headers = None
    if isinstance(exc, ServiceUnavailable) and exc.retry_after_s is not None:
        headers = {"retry-after": str(max(1, math.ceil(exc.retry_after_s)))}
    return error_response(exc.status_code, exc.message, exc.error_type, exc.param, exc.code, headers)


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
        elif path is None and error["type"] == "value_error":
            message = str(error["msg"]).removeprefix("Value error, ")
        elif path is None:
            message = "the request body must be a JSON object (Content-Type: application/json)"
        else:
            message = f"'{path}': " + str(error["msg"]).removeprefix("Value error, ")
        if message not in by_path.setdefault(path, []):
            by_path[path].append(message)
    first = next(iter(by_path), None)
    messages = [m for ms in by_path.values() for m in ms]
    return "; ".join(messages[:5]) or "invalid request", first


class BodyLimit:
    """413 for a body over ``app.state.max_body_bytes``, declared or streamed, before it is parsed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit: int | None = getattr(scope["app"].state, "max_body_bytes", None) if "app" in scope else None
        if scope["type"] != "http" or limit is None:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await service_error_response(_too_large(limit))(scope, receive, send)
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


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the request body is larger than this service takes ({limit} bytes)")


app.add_middleware(BodyLimit)


@app.middleware("http")
async def _authenticate(request: Request, call_next: Any) -> Any:
    keys: ApiKeys | None = getattr(request.app.state, "api_keys", None)
    if keys is not None and request.url.path.startswith("/v1/"):
        try:
            keys.check(request.headers.get("authorization"))
        except Unauthorized as exc:
            return service_error_response(exc)
    return await call_next(request)


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    message, param = _describe(list(exc.errors()), exc.body)
    return error_response(400, message, "invalid_request_error", param=param, code="invalid_request")


async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
    return service_error_response(exc)


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    error_type = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    return error_response(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", error_type)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal error in the router service", "internal_error")


def register_error_handlers(target: FastAPI) -> None:
    """Every failure answered in OpenAI's error shape."""
    target.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    target.add_exception_handler(ServiceError, _service_error)  # type: ignore[arg-type]
    target.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    target.add_exception_handler(Exception, _internal_error)


register_error_handlers(app)
