"""The in-process client's side of the wire: a request validated exactly as the HTTP body is,
and the service's errors raised as the ``openai`` client raises the HTTP answers they cause."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import openai
from openai import NotGiven, Omit
from pydantic import BaseModel, ValidationError

from routing import protocol
from routing.errors import ServiceError
from routing.openai_compat import HTTP
from routing.serving.headers import error_headers
from routing.serving.validation import invalid_request

T = TypeVar("T")
Seconds = float | NotGiven | None

# Errors and raw responses carry a request of openai's HTTP library, as the client's do; this one is never sent.
URL = "http://routellm.in-process/v1/chat/completions"
_INTERNAL = "internal error in the router service"
# How openai's client picks the exception for a status (``OpenAI._make_status_error``).
_STATUS_ERRORS: dict[int, type[openai.APIStatusError]] = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    409: openai.ConflictError,
    422: openai.UnprocessableEntityError,
    429: openai.RateLimitError,
}


def chat_request(fields: Mapping[str, Any]) -> protocol.ChatCompletionRequest:
    """The request the HTTP service reads from the body the openai client sends for ``fields``.

    The fields go through JSON as they would on the wire (openai's "not given" markers left out,
    its own response objects as their set fields), so that the strict validation sees what the
    service sees, and a bad field gets the service's 400 word for word."""
    given = {key: value for key, value in fields.items() if not isinstance(value, NotGiven | Omit)}
    body = json.loads(json.dumps(given, default=_jsonable))
    try:
        return protocol.ChatCompletionRequest.model_validate(body)
    except ValidationError as exc:
        raise status_error(invalid_request(list(exc.errors(include_url=False)), body)) from None


def _jsonable(value: object) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_unset=True)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def http_response(status: int, headers: Mapping[str, str], body: Any = None) -> Any:
    """A response of the HTTP library the installed openai client is built on."""
    return HTTP.Response(status, headers=headers, json=body, request=HTTP.Request("POST", URL))


def status_error(exc: ServiceError) -> openai.APIStatusError:
    """What the openai client raises for the HTTP service's error response to ``exc``."""
    body = exc.to_dict()
    response = http_response(exc.status_code, error_headers(exc), {"error": body})
    default = openai.InternalServerError if exc.status_code >= 500 else openai.APIStatusError
    error_class = _STATUS_ERRORS.get(exc.status_code, default)
    # The message as the openai client words it (``_make_status_error_from_response``).
    return error_class(f"Error code: {exc.status_code} - {exc.message}", response=response, body=body)


def stream_error(exc: ServiceError) -> openai.APIError:
    """What the openai client raises for the error event that ends a stream after its first token."""
    return openai.APIError(exc.message, HTTP.Request("POST", URL), body=exc.to_dict())


def seconds_of(timeout: Seconds) -> float | None:
    if timeout is None or isinstance(timeout, NotGiven):
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"timeout: a number of seconds or None, not {type(timeout).__name__}")
    return float(timeout)


async def answer(step: Awaitable[T], timeout: float | None, as_error: Callable[[ServiceError], openai.APIError]) -> T:
    """``step``'s result within ``timeout``; its failures raised as the openai client raises the
    service's errors: an error response (``status_error``) or a stream's error event (``stream_error``)."""
    try:
        return await asyncio.wait_for(step, timeout)
    except asyncio.TimeoutError:
        raise openai.APITimeoutError(request=HTTP.Request("POST", URL)) from None
    except ServiceError as exc:
        raise as_error(exc) from None
    except Exception as exc:  # the service answers 500 and logs; here the cause stays chained
        raise as_error(ServiceError(_INTERNAL)) from exc
