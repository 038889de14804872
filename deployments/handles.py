"""DeploymentHandles dressed as the engine's parts (embedder, ranker, chat backend).

A replica's exception reaches the caller wrapped in Ray's ``RayTaskError``; the service's own
errors are unwrapped so that the engine sees exactly what the replica raised. Ray's own
failures become service errors the engine can act on:

- a replica that died or cannot be reached mid-call: the routing step is tried again
  (:class:`RoutingUnavailable`), an upstream call is retried or falls back (``replica_unavailable``);
- a deployment whose queue is full (``max_queued_requests``): 503 with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import numpy as np
from ray.exceptions import RayActorError, RayTaskError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError, ReplicaUnavailableError
from ray.serve.handle import DeploymentHandle

from routing.errors import RoutingUnavailable, ServiceError, ServiceUnavailable, UpstreamError
from routing.protocol import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest
from routing.routers.live import Ranking, RankQuery, RouterState

T = TypeVar("T")

REPLICA_LOST = (RayActorError, ReplicaUnavailableError, DeploymentUnavailableError)


def _translated(exc: BaseException, lost: Callable[[str], ServiceError]) -> BaseException:
    if isinstance(exc, RayTaskError) and isinstance(exc.cause, ServiceError):
        return exc.cause
    if isinstance(exc, BackPressureError):
        return ServiceUnavailable(
            "the service is at capacity; retry shortly", retry_after_s=exc.retry_after_s or 1.0, code="overloaded"
        )
    if isinstance(exc, REPLICA_LOST):
        return lost(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    return exc


def _routing_lost(deployment: str) -> Callable[[str], ServiceError]:
    return lambda detail: RoutingUnavailable(f"the {deployment} replica was lost mid-call ({detail})")


async def _call(response: Awaitable[T], lost: Callable[[str], ServiceError]) -> T:
    try:
        return await response
    except Exception as exc:
        translated = _translated(exc, lost)
        if translated is exc:
            raise
        raise translated from None


class HandleEmbedder:
    def __init__(self, handle: DeploymentHandle, model_id: str) -> None:
        self.handle = handle
        self.model_id = model_id

    async def embed(self, texts: list[str]) -> np.ndarray:
        return await _call(self.handle.embed.remote(texts), _routing_lost("embedding"))


class HandleRanker:
    def __init__(self, handle: DeploymentHandle) -> None:
        self.handle = handle

    async def rank(self, query: RankQuery) -> Ranking:
        return await _call(self.handle.rank.remote(query), _routing_lost("router"))

    async def state(self) -> RouterState:
        return await _call(self.handle.state.remote(), _routing_lost("router"))


class HandleBackend:
    def __init__(self, handle: DeploymentHandle, model: str) -> None:
        self.handle = handle
        self.model = model

    def _lost(self, detail: str) -> ServiceError:
        return UpstreamError(
            f"the client replica of model '{self.model}' was lost mid-call ({detail})",
            model=self.model,
            reason="replica_unavailable",
            retriable=True,
        )

    async def complete(self, request: ChatCompletionRequest) -> ChatCompletion:
        return await _call(self.handle.complete.remote(request), self._lost)

    async def stream(self, request: ChatCompletionRequest) -> AsyncIterator[ChatCompletionChunk]:
        try:
            async for chunk in self.handle.options(stream=True).stream.remote(request):
                yield chunk
        except Exception as exc:
            translated = _translated(exc, self._lost)
            if translated is exc:
                raise
            raise translated from None
