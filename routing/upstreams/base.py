from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from routing.protocol import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest
from routing.upstreams.config import NativeApi


class ChatBackend(Protocol):
    """One upstream model. Failures raise :class:`routing.errors.UpstreamError` subclasses. One
    that holds connections also has ``async aclose()``, called when it is no longer needed."""

    model: str

    async def complete(self, request: ChatCompletionRequest) -> ChatCompletion: ...

    def stream(self, request: ChatCompletionRequest) -> AsyncIterator[ChatCompletionChunk]: ...

    async def ready(self) -> None:
        """Returns once this client can take requests (not a call to the upstream); a client
        built in this process is ready once it exists."""

    async def rejected_key(self) -> str | None:
        """Why the upstream refuses this client's key (its 401 or 403 to a call that costs
        nothing, the model list); None where it accepts it, has no key to check, or cannot tell."""
        return None

    async def native(self, api: NativeApi, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` sent unchanged to the upstream's own ``api`` (one it speaks: ``speaks``), and
        its answer as it came."""
        raise NotImplementedError(f"model '{self.model}' does not speak the {api} API")

    def native_stream(self, api: NativeApi, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """The same, streamed: each event's data as it came (its ``type`` names the event)."""
        raise NotImplementedError(f"model '{self.model}' does not speak the {api} API")

    def check_health(self) -> None:
        """Raises when this client can no longer serve (not a call to the upstream: its failures
        are counted by the circuit breaker instead)."""
