"""An upstream reached through ``openai.AsyncOpenAI`` at any OpenAI-compatible base URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai

from routing.errors import UpstreamError, UpstreamUnconfigured
from routing.openai_compat import async_client, error_detail, upstream_error
from routing.protocol import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest
from routing.upstreams.base import ChatBackend
from routing.upstreams.config import OpenAIUpstream


class OpenAIChatBackend(ChatBackend):
    def __init__(self, config: OpenAIUpstream) -> None:
        self.model = config.model
        self.config = config
        self.client = async_client(
            config.base_url, config.api_key_env, config.timeouts.total_s, config.timeouts.connect_s
        )

    async def aclose(self) -> None:
        """Closes the connections to the upstream; the backend is not used afterwards."""
        await self.client.close()

    async def rejected_key(self) -> str | None:
        if not self.config.configured:
            return None
        try:
            await self.client.models.list()
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            return f"HTTP {exc.status_code}: {error_detail(exc)}"
        except Exception:  # unreachable, or no model list: not the key, as far as can be told
            return None
        return None

    def check_health(self) -> None:
        if self.client.is_closed():
            raise RuntimeError(f"the HTTP client of model '{self.model}' is closed")

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

    async def complete(self, request: ChatCompletionRequest) -> ChatCompletion:
        arguments = self._arguments(request)
        try:
            response = await self.client.chat.completions.create(**arguments)
            return ChatCompletion.model_validate({**response.model_dump(exclude_unset=True), "model": self.model})
        except Exception as exc:  # every failure becomes an UpstreamError the caller can act on
            raise upstream_error(exc, self.model) from None

    async def stream(self, request: ChatCompletionRequest) -> AsyncIterator[ChatCompletionChunk]:
        arguments = self._arguments(request)
        if request.stream_options is not None:
            arguments["stream_options"] = request.stream_options.model_dump(exclude_none=True)
        try:
            chunks = await self.client.chat.completions.create(**arguments, stream=True)
        except Exception as exc:
            raise upstream_error(exc, self.model) from None
        async with chunks:  # closes the upstream connection when the client goes away
            received = 0
            try:
                async for chunk in chunks:
                    received += 1
                    yield ChatCompletionChunk.model_validate(
                        {**chunk.model_dump(exclude_unset=True), "model": self.model}
                    )
            except Exception as exc:
                raise upstream_error(exc, self.model) from None
            if not received:
                raise UpstreamError(
                    f"model '{self.model}' sent a stream without any chunk",
                    model=self.model,
                    reason="upstream_malformed",
                )
