"""An upstream reached through ``openai.AsyncOpenAI`` at any OpenAI-compatible base URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
from openai import AsyncStream

from routing.errors import UpstreamError
from routing.openai_compat import async_client
from routing.protocol import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest
from routing.upstreams.config import OpenAIUpstream
from routing.upstreams.sdk_backend import SdkBackend

CHAT_PATH = "/chat/completions"


class OpenAIChatBackend(SdkBackend):
    """Answers and chunks are read as the JSON they came in and validated once, as the service's
    own types: the SDK's typed parse would build each twice (bench.client_hop)."""

    sdk = openai
    native_path = "/responses"  # the base URL ends in /v1

    def __init__(self, config: OpenAIUpstream) -> None:
        timeouts = config.timeouts
        super().__init__(
            config, async_client(config.base_url, config.api_key_env, timeouts.total_s, timeouts.connect_s)
        )

    def _arguments(self, request: ChatCompletionRequest) -> dict[str, Any]:
        self.check_configured()
        return {
            "model": self.model,
            "messages": [m.model_dump(exclude_none=True) for m in request.messages],
            **request.upstream_params(),
        }

    async def complete(self, request: ChatCompletionRequest) -> ChatCompletion:
        arguments = self._arguments(request)
        try:
            response = await self.client.post(CHAT_PATH, body=arguments, cast_to=object)
            return ChatCompletion.model_validate({**_object(response), "model": self.model})
        except Exception as exc:  # every failure becomes an UpstreamError the caller can act on
            raise self.error(exc) from None

    async def stream(self, request: ChatCompletionRequest) -> AsyncIterator[ChatCompletionChunk]:
        arguments = self._arguments(request)
        if request.stream_options is not None:
            arguments["stream_options"] = request.stream_options.model_dump(exclude_none=True)
        try:
            asked = arguments | {"stream": True}
            chunks = await self.client.post(
                CHAT_PATH, body=asked, cast_to=object, stream=True, stream_cls=AsyncStream[object]
            )
        except Exception as exc:
            raise self.error(exc) from None
        async with chunks:  # closes the upstream connection when the client goes away
            received = 0
            try:
                async for chunk in chunks:
                    received += 1
                    yield ChatCompletionChunk.model_validate({**_object(chunk), "model": self.model})
            except Exception as exc:
                raise self.error(exc) from None
            if not received:
                raise UpstreamError(
                    f"model '{self.model}' sent a stream without any chunk",
                    model=self.model,
                    reason="upstream_malformed",
                )


def _object(data: object) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"a JSON object was expected, not {type(data).__name__}")
    return data
