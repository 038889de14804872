"""The request path, independent of how its parts are hosted.

    model name ─► router? ─► embed last user turn ─► score ─► score ≥ threshold ? strong : weak
                    │                                                    │
                    └─ no: the upstream of that name ──────────────────► upstream (fallback: the other)

The same engine runs behind the Ray Serve ingress (its parts are DeploymentHandles) and in a
single process (its parts are local objects); only the objects passed in differ.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np

from routing.calibration import router_calibrations
from routing.config import AppConfig, ConfigError, IngressUserConfig, RouterDefaults
from routing.embeddings import Embedder, make_embedder
from routing.errors import InvalidRequest, ModelNotFound, RoutingUnavailable, UpstreamError
from routing.model_names import ROUTER_PREFIX, RouterAlias, parse_router_alias
from routing.protocol import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    ModelCard,
    ModelList,
    RouteDecision,
    Usage,
)
from routing.request_log import RequestLog
from routing.resilience import ResilientUpstream, close_stream
from routing.resources import MissingResource
from routing.routers import Router, make_router
from routing.telemetry import NO_TELEMETRY, Telemetry, cost_of
from routing.upstreams import ChatBackend, close_connections, make_backend

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
    key: str


class RoutingEngine:
    def __init__(
        self,
        config: AppConfig,
        embedder: Embedder | None,
        scorers: Mapping[str, Scorer],
        backends: Mapping[str, ChatBackend],
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self.config = config
        self.embedder = embedder
        self.scorers = scorers
        self.telemetry = telemetry
        self.upstreams = {
            key: ResilientUpstream(backend, config.upstreams[key], telemetry) for key, backend in backends.items()
        }
        self.calibrations = router_calibrations(config)
        self.checkpoints: dict[str, str] = {}
        self.request_log = RequestLog(config.request_log) if config.request_log else None
        self.defaults: dict[str, RouterDefaults] = {}
        self.reconfigure(IngressUserConfig())

    def reconfigure(self, user_config: IngressUserConfig) -> None:
        """Router defaults from the config file, overridden by ``user_config``, and the
        calibration tables of the checkpoints it names; checked whole before any is applied, so
        a bad update leaves the previous settings in place."""
        checkpoints = {name: s.checkpoint for name, s in user_config.routers.items() if s.checkpoint is not None}
        calibrations = self.calibrations
        if checkpoints != self.checkpoints:
            routers = {
                name: router.model_copy(update={"checkpoint": checkpoints.get(name, router.checkpoint)})
                for name, router in self.config.routers.items()
            }
            try:
                calibrations = router_calibrations(self.config.model_copy(update={"routers": routers}))
            except (OSError, ValueError, MissingResource) as exc:  # a checkpoint missing or unreadable
                raise ConfigError(f"invalid user_config:\n  user_config.routers: {exc}") from None
        defaults = {
            name: user_config.routers.get(
                name, RouterDefaults(**router.model_dump(include=set(RouterDefaults.model_fields)))
            )
            for name, router in self.config.routers.items()
        }
        problems = [
            f"routers.{name}.default_strong_percent: {calibrations[name]}"
            for name, d in defaults.items()
            if d.default_strong_percent is not None and isinstance(calibrations[name], str)
        ]
        if problems:
            raise ConfigError("invalid router defaults:\n  " + "\n  ".join(problems))
        self.defaults, self.calibrations, self.checkpoints = defaults, calibrations, checkpoints

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

    def check_limits(self, messages: Sequence[ChatMessage]) -> None:
        limits = self.config.limits
        if len(messages) > limits.max_messages:
            raise InvalidRequest(
                f"{len(messages)} messages is more than this service takes ({limits.max_messages})",
                param="messages",
                code="too_many_messages",
            )
        chars = sum(len(m.text()) for m in messages)
        if chars > limits.max_prompt_chars:
            raise InvalidRequest(
                f"the messages hold {chars} characters of text, more than this service takes "
                f"({limits.max_prompt_chars})",
                param="messages",
                code="context_length_exceeded",
            )

    async def plan(self, model: str, messages: Sequence[ChatMessage]) -> Plan:
        self.check_limits(messages)
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
        prompt = routed_prompt(messages)[: self.config.limits.router_prompt_chars]
        strong, weak = self.config.strong, self.config.weak
        try:
            score = await self._score(alias.router, prompt)
        except (RoutingUnavailable, UpstreamError) as exc:
            # The router cannot score; the request is still answered, by the configured model.
            choice = self.config.fallback.on_routing_error
            if choice == "error":
                raise
            reason = exc.reason if isinstance(exc, UpstreamError) else exc.code
            target, other = (strong, weak) if choice == "strong" else (weak, strong)
            return Plan(None, *self._order(target, other, first_reason=f"routing_{reason}"))
        target, other = (strong, weak) if score >= threshold else (weak, strong)
        self.telemetry.decision(alias.router, self.config.upstreams[target].model, target == strong, score)
        order, skip_reason = self._order(target, other)
        decision = RouteDecision(
            router=alias.router,
            score=score,
            threshold=threshold,
            strong_percent=strong_percent,
            target=self.config.upstreams[target].model,
            fallback=skip_reason,
        )
        return Plan(decision, order, skip_reason)

    def _order(self, target: str, other: str, first_reason: str | None = None) -> tuple[tuple[str, ...], str | None]:
        """The upstreams to try for a routed request, and why the target is skipped, if it is."""
        upstreams, policy = self.config.upstreams, self.config.fallback
        if not upstreams[target].configured and policy.on_unconfigured == "other_model":
            return (other,), first_reason or "upstream_unconfigured"
        may_fall_back = (
            policy.on_upstream_error == "other_model" and upstreams[target].configured and upstreams[other].configured
        )
        return ((target, other) if may_fall_back else (target,)), first_reason

    async def _score(self, router: str, prompt: str) -> float:
        """Embeds and scores the prompt within the routing time limit; a replica lost on the way
        gets the step tried once more."""
        try:
            return await asyncio.wait_for(self._score_retrying(router, prompt), self.config.fallback.routing_timeout_s)
        except asyncio.TimeoutError:
            raise RoutingUnavailable(
                f"no routing decision within {self.config.fallback.routing_timeout_s:g} s", code="timeout"
            ) from None

    async def _score_retrying(self, router: str, prompt: str) -> float:
        try:
            return await self._score_once(router, prompt)
        except RoutingUnavailable as exc:
            self.telemetry.routing_retry(exc.code or "replica_unavailable")
            return await self._score_once(router, prompt)

    async def _score_once(self, router: str, prompt: str) -> float:
        embeddings = None
        if self.config.routers[router].needs_embeddings:
            if self.embedder is None:
                raise RuntimeError("an embedding router is configured without an embedder")
            embeddings = await self.embedder.embed([prompt])
        return (await self.scorers[router].score([prompt], embeddings))[0]

    async def route(self, model: str, messages: Sequence[ChatMessage]) -> RouteDecision:
        plan = await self.plan(model, messages)
        if plan.decision is not None:
            return plan.decision
        if plan.skip_reason:  # a router that could not score
            raise RoutingUnavailable(f"the router could not score the prompt ({plan.skip_reason})")
        raise InvalidRequest(f"'{model}' is not a router alias: use 'router-<router>-<threshold>'", param="model")

    async def complete(self, request: ChatCompletionRequest) -> tuple[Outcome, ChatCompletion]:
        plan = await self.plan(request.model, request.messages)
        outcome, completion = await self._first_success(plan, lambda key: self.upstreams[key].complete(request))
        self._answered(request, outcome, completion.usage)
        return outcome, completion

    async def stream(self, request: ChatCompletionRequest) -> tuple[Outcome, AsyncIterator[ChatCompletionChunk]]:
        """Opens the stream and waits for its first token: until then a failure may still fall back,
        after it the answer is committed to this upstream."""
        plan = await self.plan(request.model, request.messages)
        outcome, chunks = await self._first_success(plan, lambda key: self.upstreams[key].open_stream(request))
        return outcome, self._watch_usage(request, outcome, chunks)

    async def _first_success(self, plan: Plan, attempt: Callable[[str], Awaitable[T]]) -> tuple[Outcome, T]:
        """Tries the plan's upstreams in order; if all fail, the first choice's error is raised,
        naming every failure."""
        reason, errors = plan.skip_reason, []
        for key in plan.order:
            try:
                result = await attempt(key)
            except UpstreamError as exc:
                errors.append(exc)
                reason = exc.reason
                continue
            if reason:
                self.telemetry.fallback(reason)
            return Outcome(plan.decision, self.config.upstreams[key].model, reason, key), result
        assert errors, "a plan always names at least one upstream"
        first = errors[0]
        if len(errors) > 1:
            first.message += "; the fallback failed too: " + "; ".join(e.message for e in errors[1:])
            first.args = (first.message,)
        raise first

    def _answered(self, request: ChatCompletionRequest, outcome: Outcome, usage: Usage | None) -> None:
        """Records an answer: its usage and cost in telemetry, and the request log's line."""
        cost = None
        if usage is not None:
            cost = cost_of(self.config, outcome.key, usage.prompt_tokens, usage.completion_tokens)
            self.telemetry.usage(outcome.model, usage.prompt_tokens, usage.completion_tokens, cost)
        if self.request_log is None:
            return
        self.request_log.record(
            request.model,
            request.messages,
            request.stream,
            outcome.decision,
            outcome.model,
            outcome.fallback,
            usage,
            cost.usd if cost else None,
        )

    async def aclose(self) -> None:
        """Closes what the engine holds open: upstream and embedding connections, the request log."""
        await close_connections(*(u.backend for u in self.upstreams.values()), self.embedder)
        if self.request_log is not None:
            self.request_log.close()

    async def _watch_usage(
        self, request: ChatCompletionRequest, outcome: Outcome, chunks: AsyncIterator[ChatCompletionChunk]
    ) -> AsyncIterator[ChatCompletionChunk]:
        usage = None
        try:
            async for chunk in chunks:
                if chunk.usage is not None:
                    usage = chunk.usage
                yield chunk
        finally:
            await close_stream(chunks)
            self._answered(request, outcome, usage)


def in_process_engine(config: AppConfig) -> RoutingEngine:
    """The whole request path in this process: no Ray, same behaviour as the service."""
    return RoutingEngine(
        config,
        make_embedder(config.embedding) if config.needs_embeddings else None,
        {name: LocalScorer(make_router(router, config.router_model_ids)) for name, router in config.routers.items()},
        {key: make_backend(upstream) for key, upstream in config.upstreams.items()},
    )
