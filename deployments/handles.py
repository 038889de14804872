"""DeploymentHandles dressed as the engine's parts (embedder, scorer, chat backend).

A replica's exception reaches the caller wrapped in Ray's ``RayTaskError``; the service's own
errors are unwrapped so that the engine sees exactly what the replica raised.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

import numpy as np
from ray.exceptions import RayTaskError
from ray.serve.handle import DeploymentHandle

from routing.errors import ServiceError
from routing.protocol import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest

T = TypeVar("T")


def _unwrapped(exc: RayTaskError) -> BaseException:
    cause = exc.cause
    return cause if isinstance(cause, ServiceError) else exc


async def _call(response: Awaitable[T]) -> T:
    try:
        return await response
    except RayTaskError as exc:
        raise _unwrapped(exc) from None


class HandleEmbedder:
    def __init__(self, handle: DeploymentHandle, model_id: str) -> None:
        self.handle = handle
        self.model_id = model_id

    async def embed(self, texts: list[str]) -> np.ndarray:
        return await _call(self.handle.embed.remote(texts))


class HandleScorer:
    def __init__(self, handle: DeploymentHandle) -> None:
        self.handle = handle

    async def score(self, prompts: list[str], embeddings: np.ndarray | None) -> list[float]:
        return await _call(self.handle.score.remote(prompts, embeddings))


class HandleBackend:
    def __init__(self, handle: DeploymentHandle, model: str) -> None:
        self.handle = handle
        self.model = model

    async def complete(self, request: ChatCompletionRequest) -> ChatCompletion:
        return await _call(self.handle.complete.remote(request))

    async def stream(self, request: ChatCompletionRequest) -> AsyncIterator[ChatCompletionChunk]:
        try:
            async for chunk in self.handle.options(stream=True).stream.remote(request):
                yield chunk
        except RayTaskError as exc:
            raise _unwrapped(exc) from None
