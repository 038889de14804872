from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ray import serve

from routing.protocol import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest
from routing.upstreams import make_backend
from routing.upstreams.config import NativeApi, Upstream


@serve.deployment(ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=64)
class LLMClient:
    """One upstream model: an OpenAI-compatible or Anthropic API client, or a local model generating here."""

    def __init__(self, config: Upstream) -> None:
        self.backend = make_backend(config)

    async def check_health(self) -> None:
        self.backend.check_health()

    async def ready(self) -> None:
        """Answers once the replica runs and its client can take requests: what readiness waits for."""
        await self.backend.ready()

    async def rejected_key(self) -> str | None:
        """Why the upstream refuses this replica's key, if it does (the key never leaves it)."""
        return await self.backend.rejected_key()

    async def complete(self, request: ChatCompletionRequest) -> ChatCompletion:
        return await self.backend.complete(request)

    async def stream(self, request: ChatCompletionRequest) -> AsyncIterator[ChatCompletionChunk]:
        async for chunk in self.backend.stream(request):
            yield chunk

    async def native(self, api: NativeApi, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` passed through to the upstream's own API (one it speaks)."""
        return await self.backend.native(api, body)

    async def native_stream(self, api: NativeApi, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        async for event in self.backend.native_stream(api, body):
            yield event
