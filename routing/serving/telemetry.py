"""What the request path reports as it goes: decisions, fallbacks, upstream calls, tokens and cost.

The engine calls these hooks; the service records them as Prometheus metrics
(:mod:`deployments.metrics`), a single process may ignore them. Labels never carry request
content or credentials: router names, model names and fixed reason strings only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from routing.upstreams.config import Price


@dataclass(frozen=True)
class CandidateChoice:
    """Which of a router's candidates a decision chose, cheapest first, of how many."""

    index: int
    of: int

    @property
    def most_capable(self) -> bool:
        return self.index == self.of - 1


class Telemetry:
    """Does nothing; the service's subclass turns each event into metrics."""

    def decision(self, router: str, target: str, choice: CandidateChoice, score: float, seconds: float) -> None:
        """A router chose ``target``, its candidate ``choice.index`` of ``choice.of`` (cheapest
        first), for a prompt scoring ``score``, ``seconds`` after the routing step began
        (embedding and ranking)."""

    def conversation(self, router: str, decided: str) -> None:
        """A request of a conversation that ``router`` keeps, decided ``fresh``, ``pinned`` or
        ``inherited`` (from a tool call)."""

    def pins(self, held: int | None) -> None:
        """The pins the session store holds (None: it does not say)."""

    def session_store_error(self, operation: str) -> None:
        """The session store failed to ``get`` or ``put`` a pin."""

    def fallback(self, reason: str, model: str) -> None:
        """A request left its first-choice model (or its routing step) for ``reason`` and was
        answered by ``model``."""

    def routing_retry(self, reason: str) -> None:
        """The routing step lost a replica (``reason``) and is tried once more."""

    def upstream_call(self, model: str, seconds: float, error: str | None) -> None:
        """One attempt on an upstream ended, successfully when ``error`` is None."""

    def upstream_retry(self, model: str, reason: str) -> None:
        """A failed attempt is about to be repeated on the same upstream."""

    def rejected_keys(self, rejected: Mapping[str, bool]) -> None:
        """Whether each upstream (by model) refused its key when last asked."""

    def usage(
        self, model: str, prompt_tokens: int, completion_tokens: int, cost: Cost | None, key: str | None = None
    ) -> None:
        """An upstream reported token usage; ``cost`` is known when both it and the most capable
        candidate it is measured against have prices; ``key``: the name of the API key that asked."""


NO_TELEMETRY = Telemetry()


@dataclass(frozen=True)
class Cost:
    """What an answer cost, and what the most capable candidate of its router (for a request
    that named a model: of the default candidates) would have charged for the same tokens. The
    saving is negative when a dearer model answered."""

    usd: float
    all_strong_usd: float

    @property
    def saved_usd(self) -> float:
        return self.all_strong_usd - self.usd


class _Priced(Protocol):
    price: Price | None


class PricedModels(Protocol):
    """What pricing reads of the application config: each upstream's price, and the default
    candidates, the most capable last."""

    default_candidates: list[str]

    @property
    def upstreams(self) -> Mapping[str, _Priced]: ...


def cost_of(
    config: PricedModels, model_key: str, prompt_tokens: int, completion_tokens: int, most_capable: str | None = None
) -> Cost | None:
    """The cost of an answer by ``model_key`` against sending it to ``most_capable`` (the key of
    the routing router's most capable candidate; None: the default candidates'), from the
    configured prices; None while either price is unknown."""
    baseline = most_capable or config.default_candidates[-1]
    price, baseline_price = config.upstreams[model_key].price, config.upstreams[baseline].price
    if price is None or baseline_price is None:
        return None
    return Cost(price.usd(prompt_tokens, completion_tokens), baseline_price.usd(prompt_tokens, completion_tokens))
