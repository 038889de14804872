"""An upstream reached through ``anthropic.AsyncAnthropic``: Anthropic's Messages API or a server
speaking it. Messages requests pass through unchanged; chat completions are translated
(:mod:`routing.upstreams.anthropic_chat`)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import anthropic

from routing.protocol import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest
from routing.upstreams.anthropic_chat import ChunksOfEvents, chat_completion, messages_body
from routing.upstreams.config import AnthropicUpstream
from routing.upstreams.sdk_backend import SdkBackend


class AnthropicBackend(SdkBackend):
    sdk = anthropic
    native_path = "/v1/messages"

    def __init__(self, config: AnthropicUpstream) -> None:
        # The key is read here, in the process that uses it, and never leaves it; retries are the
        # caller's (routing.serving.resilience).
        api_key = os.environ.get(config.api_key_env, "") if config.api_key_env else ""
        client = anthropic.AsyncAnthropic(
            base_url=config.base_url,
            api_key=api_key or "unused",
            max_retries=0,
            timeout=anthropic.Timeout(config.timeouts.total_s, connect=config.timeouts.connect_s),
            default_headers={"anthropic-version": config.anthropic_version},
        )
        super().__init__(config, client)
        self.max_tokens = config.max_tokens

    async def complete(self, request: ChatCompletionRequest) -> ChatCompletion:
        body = messages_body(request, self.model, self.max_tokens)
        return chat_completion(await self.native("messages", body), self.model)

    async def stream(self, request: ChatCompletionRequest) -> AsyncIterator[ChatCompletionChunk]:
        chunks = ChunksOfEvents(self.model, bool(request.stream_options and request.stream_options.include_usage))
        async for event in self.native_stream("messages", messages_body(request, self.model, self.max_tokens)):
            for chunk in chunks.chunks(event):
                yield chunk
