"""The request path, independent of how its parts are hosted.

    model name ─► router? ─► embed last user turn ─► score ─► score ≥ threshold ? strong : weak
                    │                                                    │
                    └─ no: the upstream of that name ──────────────────► upstream (fallback: the other)

The same engine runs behind the Ray Serve ingress (its parts are DeploymentHandles) and in a
single process (its parts are local objects); only the objects passed in differ.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np

from routing.calibration import router_calibrations
from routing.config import AppConfig, ConfigError, IngressUserConfig, RouterDefaults
from routing.embeddings import Embedder, make_embedder
from routing.errors import InvalidRequest, ModelNotFound, UpstreamError
from routing.model_names import ROUTER_PREFIX, RouterAlias, parse_router_alias
from routing.protocol import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    ModelCard,
    ModelList,
    RouteDecision,
)
from routing.routers import Router, make_router
from routing.upstreams import ChatBackend, make_backend

T = TypeVar("T")


class Scorer(Protocol):
    async def score(self, prompts: list[str], embeddings: np.ndarray | None) -> list[float]: ...


class LocalScorer:
    """A router in this process, as a :class:`Scorer`."""

    def __init__(self, router: Router) -> None:
        self.router = router

    async def score(self, prompts: list[str], embeddings: np.ndarray | None) -> list[float]:
        return [float(s) for s in self.router.score(prompts, embeddings)]


def routed_prompt(messages: Sequence[ChatMessage]) -> str:
    """The text routers score: the last user turn."""
    for message in reversed(messages):
        if message.role == "user":
            return message.text()
    raise InvalidRequest("a routed request needs at least one 'user' message", param="messages")


@dataclass(frozen=True)
class Plan:
    """Upstreams to try in order, the reason for leaving the first choice, and the decision behind it."""

    decision: RouteDecision | None
    order: tuple[str, ...]
    skip_reason: str | None = None


@dataclass
class Outcome:
    decision: RouteDecision | None
    model: str
    fallback: str | None


class RoutingEngine:
    def __init__(
        self,
        config: AppConfig,
        embedder: Embedder | None,
        scorers: Mapping[str, Scorer],
        backends: Mapping[str, ChatBackend],
    ) -> None:
        self.config = config
        self.embedder = embedder
        self.scorers = scorers
        self.backends = backends
        self.calibrations = router_calibrations(config)
        self.defaults: dict[str, RouterDefaults] = {}
        self.reconfigure(IngressUserConfig())

    def reconfigure(self, user_config: IngressUserConfig) -> None:
        """Router defaults from the config file, overridden by ``user_config``; checked whole
        before any is applied, so a bad update leaves the previous defaults in place."""
        defaults = {
            name: user_config.routers.get(
                name, RouterDefaults(**router.model_dump(include=set(RouterDefaults.model_fields)))
            )
            for name, router in self.config.routers.items()
        }
        problems = [
            f"routers.{name}.default_strong_percent: {self.calibrations[name]}"
            for name, d in defaults.items()
            if d.default_strong_percent is not None and isinstance(self.calibrations[name], str)
        ]
        if problems:
            raise ConfigError("invalid router defaults:\n  " + "\n  ".join(problems))
        self.defaults = defaults

    def threshold(self, name: str, alias: RouterAlias) -> tuple[float, float | None]:
        """The threshold for a router alias, and the strong share it was calibrated for, if any."""
        if alias.threshold is not None:
            return alias.threshold, None
        defaults = self.defaults[name]
        percent = alias.strong_percent if alias.strong_percent is not None else defaults.default_strong_percent
        if percent is None:
            return defaults.default_threshold, None
        table = self.calibrations[name]
        if isinstance(table, str):
            raise InvalidRequest(table, param="model", code="no_calibration")
        return table.threshold(percent), percent

    def models(self) -> ModelList:
        cards = [ModelCard(id=f"{ROUTER_PREFIX}{name}", owned_by="router") for name in self.config.routers]
        cards += [ModelCard(id=u.model, owned_by=u.backend) for u in self.config.upstreams.values()]
        return ModelList(data=cards)

    async def plan(self, model: str, messages: Sequence[ChatMessage]) -> Plan:
        alias = parse_router_alias(model)
        if alias is None:
            key = self.config.upstream_by_model(model)
            if key is None:
                known = ", ".join(card.id for card in self.models().data)
                raise ModelNotFound(f"model '{model}' does not exist; available: {known}", param="model")
            return Plan(decision=None, order=(key,))
        router = self.config.routers.get(alias.router)
        if router is None:
            raise ModelNotFound(
                f"router '{alias.router}' does not exist; available: {', '.join(self.config.routers)}", param="model"
            )
        threshold, strong_percent = self.threshold(alias.router, alias)
        prompt = routed_prompt(messages)
        embeddings = None
        if router.needs_embeddings:
            if self.embedder is None:
                raise RuntimeError("an embedding router is configured without an embedder")
            embeddings = await self.embedder.embed([prompt])
        score = (await self.scorers[alias.router].score([prompt], embeddings))[0]
        strong, weak = self.config.strong, self.config.weak
        target, other = (strong, weak) if score >= threshold else (weak, strong)
        upstreams, policy = self.config.upstreams, self.config.fallback
        skip = not upstreams[target].configured and policy.on_unconfigured == "other_model"
        decision = RouteDecision(
            router=alias.router,
            score=score,
            threshold=threshold,
            strong_percent=strong_percent,
            target=upstreams[target].model,
            fallback="upstream_unconfigured" if skip else None,
        )
        if skip:
            return Plan(decision=decision, order=(other,), skip_reason=decision.fallback)
        may_fall_back = (
            policy.on_upstream_error == "other_model" and upstreams[target].configured and upstreams[other].configured
        )
        return Plan(decision=decision, order=(target, other) if may_fall_back else (target,))

    async def route(self, model: str, messages: Sequence[ChatMessage]) -> RouteDecision:
        plan = await self.plan(model, messages)
        if plan.decision is None:
            raise InvalidRequest(f"'{model}' is not a router alias: use 'router-<router>-<threshold>'", param="model")
        return plan.decision

    async def complete(self, request: ChatCompletionRequest) -> tuple[Outcome, ChatCompletion]:
        plan = await self.plan(request.model, request.messages)
        return await self._first_success(plan, lambda key: self.backends[key].complete(request))

    async def stream(self, request: ChatCompletionRequest) -> tuple[Outcome, AsyncIterator[ChatCompletionChunk]]:
        """Opens the stream and waits for its first chunk: until then a failure may still fall back,
        after it the answer is committed to this upstream."""
        plan = await self.plan(request.model, request.messages)
        return await self._first_success(plan, lambda key: self._open_stream(key, request))

    async def _open_stream(self, key: str, request: ChatCompletionRequest) -> AsyncIterator[ChatCompletionChunk]:
        chunks = aiter(self.backends[key].stream(request))
        first = await anext(chunks, None)
        if first is None:
            model = self.config.upstreams[key].model
            raise UpstreamError(f"model '{model}' ended its stream before the first chunk", model=model)
        return _prepend(first, chunks)

    async def _first_success(self, plan: Plan, attempt: Callable[[str], Awaitable[T]]) -> tuple[Outcome, T]:
        """Tries the plan's upstreams in order; if all fail, the first choice's error is raised."""
        reason, first_error = plan.skip_reason, None
        for key in plan.order:
            try:
                result = await attempt(key)
            except UpstreamError as exc:
                first_error = first_error or exc
                reason = exc.fallback_reason
                continue
            return Outcome(plan.decision, self.config.upstreams[key].model, reason), result
        assert first_error is not None, "a plan always names at least one upstream"
        raise first_error


async def _prepend(
    first: ChatCompletionChunk, rest: AsyncIterator[ChatCompletionChunk]
) -> AsyncIterator[ChatCompletionChunk]:
    yield first
    async for chunk in rest:
        yield chunk


def in_process_engine(config: AppConfig) -> RoutingEngine:
    """The whole request path in this process: no Ray, same behaviour as the service."""
    return RoutingEngine(
        config,
        make_embedder(config.embedding) if config.needs_embeddings else None,
        {name: LocalScorer(make_router(router, config.router_model_ids)) for name, router in config.routers.items()},
        {key: make_backend(upstream) for key, upstream in config.upstreams.items()},
    )
