"""The request path, independent of how its parts are hosted.

    model name ─► router? ─► pinned? ─► embed the scored turns ─► router: order its candidates ─► first choice
                    │          │  (the cheapest predicted as good as the most capable)                    │
                    │          └─ yes (a tool loop, a held conversation): the pinned model ───────────────┤
                    └─ no: the upstream of that name ─────────────────────────────────────────────► upstream
                                                                                           (fallback: the next)

The same engine runs behind the Ray Serve ingress (its parts are DeploymentHandles) and in a
single process (its parts are local objects); only the objects passed in differ.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

import numpy as np

from routing.config import AppConfig
from routing.embeddings import Embedder
from routing.errors import InvalidRequest, ModelNotFound, RoutingUnavailable, ServiceError, UpstreamError
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
from routing.routers.kinds import KINDS
from routing.serving.answered import AnswerRecorder, Outcome, TextOf, chunk_text, completion_text
from routing.serving.conversation import ConversationRef, scored_text
from routing.serving.kv_store import open_stores
from routing.serving.live_router import Ranking, RankQuery, RouterState
from routing.serving.resilience import ResilientUpstream, upstream_order
from routing.serving.sessions import Looked, Sessions
from routing.serving.telemetry import NO_TELEMETRY, CandidateChoice, Telemetry
from routing.serving.validation import check_limits
from routing.upstreams import ChatBackend, close_connections

T = TypeVar("T")
S = TypeVar("S")
READINESS_PROBE = "readiness check"


class Ranker(Protocol):
    """A router as the engine asks it: the order of its candidates for a prompt, and its state."""

    async def rank(self, query: RankQuery) -> Ranking: ...

    async def state(self) -> RouterState: ...


@dataclass(frozen=True)
class Plan:
    """Upstreams to try in order, the reason for leaving the first choice, the decision behind
    it, and the conversation whose pin the answer updates."""

    decision: RouteDecision | None
    order: tuple[str, ...]
    skip_reason: str | None = None
    looked: Looked | None = None


class RoutingEngine:
    def __init__(
        self,
        config: AppConfig,
        embedder: Embedder | None,
        rankers: Mapping[str, Ranker],
        backends: Mapping[str, ChatBackend],
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self.config = config
        self.embedder = embedder
        self.rankers = rankers
        self.telemetry = telemetry
        self.upstreams = {
            key: ResilientUpstream(backend, config.upstreams[key], telemetry) for key, backend in backends.items()
        }
        self.candidates = {name: config.candidates(name) for name in config.routers}
        self.reads_embeddings = {name for name, router in config.routers.items() if KINDS.of(router).needs_embeddings}
        self.answers = AnswerRecorder(config, self.candidates, telemetry)
        self.stores = open_stores(config.sessions)
        self.sessions = Sessions(self.stores.pins, telemetry)

    async def router_states(
        self, names: Sequence[str] | None = None, timeout_s: float = 5.0
    ) -> dict[str, RouterState | str]:
        """Each router's state as it reports it, or why it did not within ``timeout_s``."""

        async def ask(name: str) -> RouterState | str:
            try:
                return await asyncio.wait_for(self.rankers[name].state(), timeout_s)
            except asyncio.TimeoutError:
                return f"router '{name}' did not answer within {timeout_s:g} s"
            except ServiceError as exc:
                return f"router '{name}' did not answer: {exc.message}"

        chosen = list(self.config.routers if names is None else names)
        return dict(zip(chosen, await asyncio.gather(*(ask(name) for name in chosen)), strict=True))

    async def unready(self, timeout_s: float) -> list[str]:
        """The parts of the request path that do not answer within ``timeout_s``: each router's
        routing step on a probe prompt (its embedding and its scoring, as a request gets them) and
        each upstream's client (not the upstream itself, whose failures a request falls back from)."""
        checks: dict[str, Awaitable[object]] = {
            f"router '{name}'": self._rank_once(name, RouterAlias(name, threshold=0.5), READINESS_PROBE)
            for name in self.config.routers
        }
        checks |= {
            f"the client of model '{self.config.upstreams[key].model}'": upstream.backend.ready()
            for key, upstream in self.upstreams.items()
        }

        async def answers(check: Awaitable[object]) -> bool:
            try:
                await asyncio.wait_for(check, timeout_s)
            except Exception:  # a part still loading, timed out or lost: not ready yet
                return False
            return True

        results = await asyncio.gather(*(answers(check) for check in checks.values()))
        return [part for part, ok in zip(checks, results, strict=True) if not ok]

    async def rejected_keys(self, timeout_s: float) -> dict[str, str]:
        """The upstreams that refuse their key (model → why), each asked once within ``timeout_s``;
        one that does not answer in time is not counted: its calls will say more."""

        async def ask(upstream: ResilientUpstream) -> str | None:
            try:
                return await asyncio.wait_for(upstream.backend.rejected_key(), timeout_s)
            except Exception:  # a replica still starting or lost: nothing known about the key
                return None

        upstreams = list(self.upstreams.values())
        answers = await asyncio.gather(*(ask(upstream) for upstream in upstreams))
        rejected = {u.backend.model: why for u, why in zip(upstreams, answers, strict=True) if why}
        self.telemetry.rejected_keys({u.backend.model: u.backend.model in rejected for u in upstreams})
        return rejected

    def query(self, alias: RouterAlias, prompt: str, embedding: np.ndarray | None) -> RankQuery:
        """What to ask the alias's router: its threshold, strong share or budget as asked, or
        none (the router resolves its own default)."""
        asked = {"threshold": alias.threshold, "strong_percent": alias.strong_percent, "budget_usd": alias.budget_usd}
        return RankQuery(prompt, embedding, **asked)

    def models(self) -> ModelList:
        cards = [ModelCard(id=f"{ROUTER_PREFIX}{name}", owned_by="router") for name in self.config.routers]
        cards += [ModelCard(id=u.model, owned_by=u.backend) for u in self.config.upstreams.values()]
        return ModelList(data=cards)

    async def plan(
        self, model: str, messages: Sequence[ChatMessage], conversation: ConversationRef | None = None
    ) -> Plan:
        """``conversation``: what the request says of its conversation (None: it is decided alone)."""
        check_limits(self.config.limits, messages)
        alias = parse_router_alias(model)
        if alias is None:
            key = self.config.upstream_by_model(model)
            if key is None:
                known = ", ".join(card.id for card in self.models().data)
                raise ModelNotFound(f"model '{model}' does not exist; available: {known}", param="model")
            return Plan(decision=None, order=(key,))
        if alias.router not in self.config.routers:
            raise ModelNotFound(
                f"router '{alias.router}' does not exist; available: {', '.join(self.config.routers)}", param="model"
            )
        settings, keys = self.config.routers[alias.router].conversation, [c.key for c in self.candidates[alias.router]]
        stickiness = conversation.stickiness if conversation and conversation.stickiness else settings.stickiness
        looked = await self.sessions.look_up(alias.router, stickiness, conversation, keys)
        if looked is not None and looked.verdict in ("inherit", "keep"):
            return self._pinned(alias.router, looked)
        prompt = scored_text(messages, settings.scored, self.config.limits.router_prompt_chars)
        plan = await self._fresh(alias, prompt)
        if looked is None or plan.decision is None:
            return plan
        if looked.keeps(plan.order[0], keys):
            return self._pinned(alias.router, looked)
        self.telemetry.conversation(alias.router, "fresh")
        update = {"session": looked.conversation.session.shown, "decided": "fresh", "session_error": looked.store_error}
        return replace(plan, decision=plan.decision.model_copy(update=update), looked=looked)

    def _pinned(self, router: str, looked: Looked) -> Plan:
        """The plan of a request that its conversation's pin decides: the pinned candidate first,
        then (as the fallback policy allows) the others, most capable first."""
        assert looked.pin is not None
        pin, keys = looked.pin, [c.key for c in self.candidates[router]]
        order, skip_reason = upstream_order(self.config, (pin.key, *(k for k in reversed(keys) if k != pin.key)))
        decided = "inherited" if looked.verdict == "inherit" else "pinned"
        self.telemetry.conversation(router, decided)
        update = {
            "target": self.config.upstreams[pin.key].model,
            "fallback": skip_reason,
            "session": looked.conversation.session.shown,
            "decided": decided,
        }
        return Plan(pin.decision.model_copy(update=update), order, skip_reason, looked)

    async def _fresh(self, alias: RouterAlias, prompt: str) -> Plan:
        keys = [c.key for c in self.candidates[alias.router]]
        began = time.perf_counter()
        try:
            ranking = await self._rank(alias.router, alias, prompt)
        except (RoutingUnavailable, UpstreamError) as exc:
            # The router cannot score; the request is still answered, by the configured model.
            end = self.config.fallback.on_routing_error
            if end == "error":
                raise
            reason = exc.reason if isinstance(exc, UpstreamError) else exc.code
            fixed = keys[::-1] if end == "most_capable" else keys
            return Plan(None, *upstream_order(self.config, fixed, first_reason=f"routing_{reason}"))
        target = ranking.order[0]
        target_model = self.config.upstreams[target].model
        choice = CandidateChoice(keys.index(target), len(keys))
        self.telemetry.decision(alias.router, target_model, choice, ranking.score, time.perf_counter() - began)
        order, skip_reason = upstream_order(self.config, ranking.order)
        decision = RouteDecision(
            router=alias.router,
            score=ranking.score,
            threshold=ranking.threshold,
            strong_percent=ranking.strong_percent,
            budget_usd=alias.budget_usd,
            target=target_model,
            fallback=skip_reason,
            checkpoint=ranking.state.checkpoint,
            candidates={self.config.upstreams[key].model: round(p, 6) for key, p in ranking.candidates},
        )
        return Plan(decision, order, skip_reason)

    async def _rank(self, router: str, alias: RouterAlias, prompt: str) -> Ranking:
        """Embeds the prompt and ranks the router's candidates for it within the routing time
        limit; a replica lost on the way gets the step tried once more."""
        timeout = self.config.fallback.routing_timeout_s
        try:
            return await asyncio.wait_for(self._rank_retrying(router, alias, prompt), timeout)
        except asyncio.TimeoutError:
            raise RoutingUnavailable(f"no routing decision within {timeout:g} s", code="timeout") from None

    async def _rank_retrying(self, router: str, alias: RouterAlias, prompt: str) -> Ranking:
        try:
            return await self._rank_once(router, alias, prompt)
        except RoutingUnavailable as exc:
            self.telemetry.routing_retry(exc.code or "replica_unavailable")
            return await self._rank_once(router, alias, prompt)

    async def _rank_once(self, router: str, alias: RouterAlias, prompt: str) -> Ranking:
        embedding = None
        if router in self.reads_embeddings:
            if self.embedder is None:
                raise RuntimeError("an embedding router is configured without an embedder")
            embedding = (await self.embedder.embed([prompt]))[0]
        return await self.rankers[router].rank(self.query(alias, prompt, embedding))

    async def route(
        self, model: str, messages: Sequence[ChatMessage], conversation: ConversationRef | None = None
    ) -> RouteDecision:
        """The decision a chat request would get (pinned for its conversation, as if answered by it)."""
        plan = await self.plan(model, messages, conversation)
        if plan.decision is not None:
            await self.sessions.remember(plan.looked, plan.order[0], plan.decision)
            return plan.decision
        if plan.skip_reason:  # a router that could not score
            raise RoutingUnavailable(f"the router could not score the prompt ({plan.skip_reason})")
        raise InvalidRequest(f"'{model}' is not a router alias: use 'router-<router>-<threshold>'", param="model")

    async def complete(
        self, request: ChatCompletionRequest, conversation: ConversationRef | None = None, key_name: str | None = None
    ) -> tuple[Outcome, ChatCompletion]:
        async def attempt(key: str) -> ChatCompletion:
            return await self.upstreams[key].complete(request)

        return await self.answer(request, conversation, attempt, _usage, key_name, completion_text)

    async def stream(
        self, request: ChatCompletionRequest, conversation: ConversationRef | None = None, key_name: str | None = None
    ) -> tuple[Outcome, AsyncIterator[ChatCompletionChunk]]:
        async def attempt(key: str) -> AsyncIterator[ChatCompletionChunk]:
            return await self.upstreams[key].open_stream(request)

        return await self.open(request, conversation, attempt, _usage, key_name, chunk_text)

    async def answer(
        self,
        request: ChatCompletionRequest,
        conversation: ConversationRef | None,
        attempt: Callable[[str], Awaitable[T]],
        usage: Callable[[T], Usage | None],
        key_name: str | None = None,
        text: TextOf[T] | None = None,
    ) -> tuple[Outcome, T]:
        """``request`` routed, and answered by ``attempt`` of the upstreams its plan names, in
        turn (an API's front door asks in its own way: translated, or passed through); its answer
        pinned for its conversation, its ``usage`` (and ``text``, where the request log keeps
        answers) recorded under ``key_name``, the name of the API key that asked."""
        plan = await self.plan(request.model, request.messages, conversation)
        outcome, answer = await self._first_success(plan, attempt)
        await self.sessions.remember(plan.looked, outcome.key, outcome.decision)
        await self.answers.record(request, outcome, usage(answer), key_name, self.answers.text(text, answer))
        return outcome, answer

    async def open(
        self,
        request: ChatCompletionRequest,
        conversation: ConversationRef | None,
        attempt: Callable[[str], Awaitable[AsyncIterator[S]]],
        usage: Callable[[S], Usage | None],
        key_name: str | None = None,
        text: TextOf[S] | None = None,
    ) -> tuple[Outcome, AsyncIterator[S]]:
        """The same, streamed: ``attempt`` opens the stream and waits for its first token; until
        then a failure may still fall back, after it the answer is committed to this upstream (and
        pinned for its conversation). The last usage the stream carries is recorded as it ends."""
        plan = await self.plan(request.model, request.messages, conversation)
        outcome, items = await self._first_success(plan, attempt)
        await self.sessions.remember(plan.looked, outcome.key, outcome.decision)
        return outcome, self.answers.watch(request, outcome, items, usage, text, key_name)

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
                self.telemetry.fallback(reason, self.config.upstreams[key].model)
            return Outcome(plan.decision, self.config.upstreams[key].model, reason, key), result
        assert errors, "a plan always names at least one upstream"
        first = errors[0]
        if len(errors) > 1:
            first.message += "; the fallback failed too: " + "; ".join(e.message for e in errors[1:])
            first.args = (first.message,)
        raise first

    async def aclose(self) -> None:
        """Closes what the engine holds open: upstream, embedding and session store connections,
        the request log."""
        await close_connections(*(u.backend for u in self.upstreams.values()), self.embedder)
        await self.stores.aclose()
        await self.answers.aclose()


def _usage(answer: ChatCompletion | ChatCompletionChunk) -> Usage | None:
    return answer.usage
