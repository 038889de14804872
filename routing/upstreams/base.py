from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from routing.protocol import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest


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

    def check_health(self) -> None:
        """Raises when this client can no longer serve (not a call to the upstream: its failures
        are counted by the circuit breaker instead)."""
