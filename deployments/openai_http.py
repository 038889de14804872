"""The ingress's HTTP layer: the FastAPI app, its guards, and OpenAI's error shape.

Every response that is not a success is OpenAI's error JSON. Before a handler runs, a request
passes two guards: the API key (before anything else, so a caller without one learns nothing of
the API) and the body size (checked on ``Content-Length`` and again while the body streams in).
"""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from routing.auth import ApiKeys
from routing.errors import PayloadTooLarge, ServiceError, Unauthorized
from routing.headers import error_headers
from routing.protocol import ErrorBody, ErrorResponse
from routing.validation import invalid_request

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
    return error_response(exc.status_code, exc.message, exc.error_type, exc.param, exc.code, error_headers(exc))


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
    return service_error_response(invalid_request(list(exc.errors()), exc.body))


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
