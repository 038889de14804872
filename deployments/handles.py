"""DeploymentHandles dressed as the engine's parts (embedder, ranker, chat backend).

A replica's exception reaches the caller wrapped in Ray's ``RayTaskError``; the service's own
errors are unwrapped so that the engine sees exactly what the replica raised. Ray's own
failures become service errors the engine can act on:

- a replica that died or cannot be reached mid-call: the routing step is tried again
  (:class:`RoutingUnavailable`), an upstream call is retried or falls back (``replica_unavailable``);
- a deployment whose queue is full (``max_queued_requests``): 503 with ``Retry-After``.

The routing steps of concurrent requests cross to the Embedding and Router deployments as one
call per batch (:data:`COALESCE`), so a stage is crossed once per batch rather than once per
request, and a router scores real batches (the Embedding and Router replicas count them in
``routellm_batch_size``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import numpy as np
from ray.exceptions import RayActorError, RayTaskError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError, ReplicaUnavailableError
from ray.serve.handle import DeploymentHandle

from routing.config import BatchingConfig
from routing.errors import InvalidRequest, RoutingUnavailable, ServiceError, ServiceUnavailable, UpstreamError
from routing.protocol import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest
from routing.serving.batching import AdaptiveBatcher
from routing.serving.live_router import Ranking, RankQuery, RouterState
from routing.upstreams.config import NativeApi

T = TypeVar("T")

# A batch leaves the ingress as soon as a slot is free; two in flight per stage let one ingress
# replica keep two replicas of a stage busy, while each batch still takes every waiting request.
COALESCE = BatchingConfig(max_batch_size=64)
COALESCE_IN_FLIGHT = 2

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
        self._coalesced = AdaptiveBatcher(self._embed_many, COALESCE, max_in_flight=COALESCE_IN_FLIGHT)

    async def embed(self, texts: list[str]) -> np.ndarray:
        if len(texts) != 1:
            return await self._remote(texts)
        return (await self._coalesced(texts[0]))[None, :]

    def queued_s(self) -> float:
        """How long the longest-waiting routing step has waited for this stage while it worked."""
        return self._coalesced.behind_s()

    async def _embed_many(self, texts: list[str]) -> list[np.ndarray]:
        return list(await self._remote(texts))

    async def _remote(self, texts: list[str]) -> np.ndarray:
        return await _call(self.handle.embed.remote(texts), _routing_lost("embedding"))


class HandleRanker:
    def __init__(self, handle: DeploymentHandle) -> None:
        self.handle = handle
        self._coalesced = AdaptiveBatcher(self._rank_many, COALESCE, max_in_flight=COALESCE_IN_FLIGHT)

    async def rank(self, query: RankQuery) -> Ranking:
        ranking = await self._coalesced(query)
        if isinstance(ranking, InvalidRequest):
            raise ranking
        return ranking

    def queued_s(self) -> float:
        return self._coalesced.behind_s()

    async def _rank_many(self, queries: list[RankQuery]) -> list[Ranking | InvalidRequest]:
        return await _call(self.handle.rank_many.remote(queries), _routing_lost("router"))

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

    async def ready(self) -> None:
        await _call(self.handle.ready.remote(), self._lost)

    async def rejected_key(self) -> str | None:
        return await _call(self.handle.rejected_key.remote(), self._lost)

    async def complete(self, request: ChatCompletionRequest) -> ChatCompletion:
        return await _call(self.handle.complete.remote(request), self._lost)

    async def stream(self, request: ChatCompletionRequest) -> AsyncIterator[ChatCompletionChunk]:
        async for chunk in self._streamed(self.handle.options(stream=True).stream.remote(request)):
            yield chunk

    async def native(self, api: NativeApi, body: dict[str, Any]) -> dict[str, Any]:
        return await _call(self.handle.native.remote(api, body), self._lost)

    async def native_stream(self, api: NativeApi, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        async for event in self._streamed(self.handle.options(stream=True).native_stream.remote(api, body)):
            yield event

    async def _streamed(self, items: Any) -> AsyncIterator[Any]:
        try:
            async for item in items:
                yield item
        except Exception as exc:
            translated = _translated(exc, self._lost)
            if translated is exc:
                raise
            raise translated from None
