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


class Telemetry:
    """Does nothing; the service's subclass turns each event into metrics."""

    def decision(
        self, router: str, target: str, strong: bool, score: float, strong_percent: float | None, seconds: float
    ) -> None:
        """A router chose ``target`` (its most capable candidate when ``strong``) for a prompt
        scoring ``score``, asked for ``strong_percent`` % to the most capable (None: a threshold
        or a budget), ``seconds`` after the routing step began (embedding and ranking)."""

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

    def usage(self, model: str, prompt_tokens: int, completion_tokens: int, cost: Cost | None) -> None:
        """An upstream reported token usage; ``cost`` is known when both models have prices."""


NO_TELEMETRY = Telemetry()


@dataclass(frozen=True)
class Cost:
    """What an answer cost, and what the strong model would have charged for the same tokens."""

    usd: float
    all_strong_usd: float

    @property
    def saved_usd(self) -> float:
        return self.all_strong_usd - self.usd


class _Priced(Protocol):
    price: Price | None


class PricedModels(Protocol):
    """What pricing reads of the application config: each upstream's price, and which is strong."""

    strong: str

    @property
    def upstreams(self) -> Mapping[str, _Priced]: ...


def cost_of(config: PricedModels, model_key: str, prompt_tokens: int, completion_tokens: int) -> Cost | None:
    """The cost of an answer by ``model_key`` against all-strong, from the configured prices."""
    price, strong_price = config.upstreams[model_key].price, config.upstreams[config.strong].price
    if price is None or strong_price is None:
        return None
    return Cost(price.usd(prompt_tokens, completion_tokens), strong_price.usd(prompt_tokens, completion_tokens))
