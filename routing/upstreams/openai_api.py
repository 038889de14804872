"""An upstream reached through ``openai.AsyncOpenAI`` at any OpenAI-compatible base URL."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import httpx
import openai
from pydantic import ValidationError

from routing.config import OpenAIUpstream
from routing.errors import UpstreamError, UpstreamRejected, UpstreamTimeout, UpstreamUnconfigured
from routing.protocol import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest

# The upstream judged the request itself bad; any other status is the upstream's (or our
# configuration's) problem, and the client sees 502.
CLIENT_FAULT_STATUSES = {400, 413, 422}


class OpenAIChatBackend:
    def __init__(self, config: OpenAIUpstream) -> None:
        self.model = config.model
        self.config = config
        # The key is read here, in the process that uses it, and never leaves it.
        api_key = os.environ.get(config.api_key_env, "") if config.api_key_env else ""
        self.client = openai.AsyncOpenAI(
            base_url=config.base_url,
            api_key=api_key or "unused",
            max_retries=0,
            timeout=httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s),
        )

    def _arguments(self, request: ChatCompletionRequest) -> dict[str, Any]:
        if not self.config.configured:
            raise UpstreamUnconfigured(
                f"model '{self.model}' has no endpoint: set {self.config.base_url_env or 'base_url'}", model=self.model
            )
        return {
            "model": self.model,
            "messages": [m.model_dump(exclude_none=True) for m in request.messages],
            **request.upstream_params(),
        }

    def _fail(self, exc: Exception) -> NoReturn:
        if isinstance(exc, openai.APITimeoutError):
            raise UpstreamTimeout(f"model '{self.model}' timed out", model=self.model) from None
        if isinstance(exc, openai.APIStatusError):
            detail = _error_message(exc)
            if exc.status_code in CLIENT_FAULT_STATUSES:
                raise UpstreamRejected(
                    f"model '{self.model}' rejected the request: {detail}",
                    model=self.model,
                    upstream_status=exc.status_code,
                ) from None
            raise UpstreamError(
                f"model '{self.model}' answered HTTP {exc.status_code}: {detail}",
                model=self.model,
                upstream_status=exc.status_code,
            ) from None
        if isinstance(exc, openai.APIConnectionError):
            raise UpstreamError(f"model '{self.model}' is unreachable: {exc}", model=self.model) from None
        if isinstance(exc, (ValidationError, openai.APIResponseValidationError, ValueError)):
            raise UpstreamError(f"model '{self.model}' sent a malformed response", model=self.model) from None
        raise UpstreamError(f"model '{self.model}' failed: {type(exc).__name__}", model=self.model) from None

    async def complete(self, request: ChatCompletionRequest) -> ChatCompletion:
        arguments = self._arguments(request)
        try:
            response = await self.client.chat.completions.create(**arguments)
            return ChatCompletion.model_validate({**response.model_dump(exclude_unset=True), "model": self.model})
        except Exception as exc:  # every failure becomes an UpstreamError the caller can act on
            self._fail(exc)

    async def stream(self, request: ChatCompletionRequest) -> AsyncIterator[ChatCompletionChunk]:
        arguments = self._arguments(request)
        if request.stream_options is not None:
            arguments["stream_options"] = request.stream_options.model_dump(exclude_none=True)
        try:
            chunks = await self.client.chat.completions.create(**arguments, stream=True)
        except Exception as exc:
            self._fail(exc)
        async with chunks:  # closes the upstream connection when the client goes away
            received = 0
            try:
                async for chunk in chunks:
                    received += 1
                    yield ChatCompletionChunk.model_validate(
                        {**chunk.model_dump(exclude_unset=True), "model": self.model}
                    )
            except Exception as exc:
                self._fail(exc)
            if not received:
                raise UpstreamError(f"model '{self.model}' sent a stream without any chunk", model=self.model)


def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"][:500]
        if isinstance(inner, str):
            return inner[:500]
    return exc.message[:500]
