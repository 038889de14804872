"""What every client of an OpenAI-compatible API here shares: how it is built, and how its
failures become the service's own :class:`~routing.errors.UpstreamError` subclasses."""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

import openai

from routing.errors import UpstreamError, UpstreamRejected, UpstreamTimeout

# The upstream judged the request itself bad; any other status is the upstream's (or our
# configuration's) problem, and the client sees 502.
CLIENT_FAULT_STATUSES = {400, 413, 422}
# Worth asking the same upstream again: it is busy or briefly broken, not refusing this request.
RETRIABLE_STATUSES = {408, 409, 429}
# openai re-exports the Timeout of the HTTP library it is built on (httpx before 3.0, httpx2
# since): the Request and Response its errors carry are that library's, found here, not assumed.
# (The class's own __module__ is renamed "openai" on re-export; its methods keep the true one.)
HTTP: ModuleType = importlib.import_module(openai.Timeout.__init__.__module__.partition(".")[0])


def async_client(
    base_url: str | None, api_key_env: str | None, timeout_s: float, connect_timeout_s: float
) -> openai.AsyncOpenAI:
    # The key is read here, in the process that uses it, and never leaves it.
    api_key = os.environ.get(api_key_env, "") if api_key_env else ""
    # Retries are the caller's (routing.serving.resilience), which also knows when to switch models.
    return openai.AsyncOpenAI(
        base_url=base_url,
        api_key=api_key or "unused",
        max_retries=0,
        timeout=openai.Timeout(timeout_s, connect=connect_timeout_s),
    )


def upstream_error(exc: Exception, model: str, sdk: ModuleType = openai) -> UpstreamError:
    """The service error to raise for a failed call to ``model`` made with ``sdk`` (``openai``, or
    ``anthropic``, whose errors have the same classes)."""
    if isinstance(exc, sdk.APITimeoutError):
        return UpstreamTimeout(f"model '{model}' timed out", model=model)
    if isinstance(exc, sdk.APIStatusError):
        detail = error_detail(exc)
        status = exc.status_code
        if status in CLIENT_FAULT_STATUSES:
            return UpstreamRejected(
                f"model '{model}' rejected the request: {detail}", model=model, upstream_status=status
            )
        return UpstreamError(
            f"model '{model}' answered HTTP {status}: {detail}",
            model=model,
            upstream_status=status,
            reason="upstream_rate_limited" if status == 429 else "upstream_error",
            retriable=status in RETRIABLE_STATUSES or status >= 500,
            retry_after_s=_retry_after(exc.response),
        )
    if isinstance(exc, sdk.APIConnectionError):
        return UpstreamError(
            f"model '{model}' is unreachable: {exc}", model=model, reason="upstream_unreachable", retriable=True
        )
    if isinstance(exc, (sdk.APIResponseValidationError, ValueError)):  # pydantic's errors are ValueErrors
        return UpstreamError(f"model '{model}' sent a malformed response", model=model, reason="upstream_malformed")
    return UpstreamError(f"model '{model}' failed: {type(exc).__name__}", model=model)


def _retry_after(response: Any) -> float | None:
    """``Retry-After`` in seconds; the HTTP-date form is ignored (the backoff applies instead)."""
    value = response.headers.get("retry-after")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds < 86400 else None


def error_detail(exc: Any) -> str:
    """What the upstream's error body says, as OpenAI's (or Anthropic's) error JSON carries it (at
    most 500 characters); ``exc``: either SDK's ``APIStatusError``."""
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"][:500]
        if isinstance(inner, str):
            return inner[:500]
    return exc.message[:500]
