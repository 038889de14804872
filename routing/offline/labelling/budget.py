"""A spending limit that labelling never goes over.

Every call holds the most it can cost before it is made: one input token per byte of its text
(a token is at least one byte) plus the chat template's, and every output token its limit
allows. What the call really cost, from the usage the upstream reports, is then counted and the
rest given back. A prompt holds the bound of all its calls before its first one, so a prompt is
not started that the budget cannot finish. Calls to an upstream without a ``price`` cost 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from routing.upstreams.config import Upstream

TEMPLATE_TOKENS = 32  # what a chat template adds around one user message, generously


class BudgetExhausted(Exception):
    """The call, or the prompt, could cost more than is left of the budget."""


def call_bound_usd(upstream: Upstream, input_bytes: int, max_tokens: int) -> float:
    price = upstream.price
    if price is None:
        return 0.0
    return ((input_bytes + TEMPLATE_TOKENS) * price.input_per_million + max_tokens * price.output_per_million) / 1e6


def call_cost_usd(upstream: Upstream, prompt_tokens: int | None, completion_tokens: int | None) -> float | None:
    """What a call cost at ``upstream``'s price; None when it has a price but no usage was reported."""
    price = upstream.price
    if price is None:
        return 0.0
    if prompt_tokens is None or completion_tokens is None:
        return None
    return (prompt_tokens * price.input_per_million + completion_tokens * price.output_per_million) / 1e6


@dataclass
class Budget:
    """``limit_usd`` to spend, of which ``spent_usd`` is gone; ``held_usd`` is promised to calls
    under way. ``spent_usd + held_usd`` never exceeds ``limit_usd``."""

    limit_usd: float
    spent_usd: float = 0.0
    held_usd: float = 0.0

    @property
    def free_usd(self) -> float:
        return self.limit_usd - self.spent_usd - self.held_usd

    def hold(self, bound_usd: float) -> Hold:
        if bound_usd > self.free_usd + 1e-12:
            raise BudgetExhausted(f"${bound_usd:.6f} needed, ${max(self.free_usd, 0.0):.6f} left of the budget")
        self.held_usd += bound_usd
        return Hold(self, bound_usd)


@dataclass
class Hold:
    """What one prompt holds of a :class:`Budget`; its calls draw on it."""

    budget: Budget
    left_usd: float

    def call(self, bound_usd: float) -> None:
        """Before a call that may cost ``bound_usd``: takes what the hold lacks from the budget."""
        missing = bound_usd - self.left_usd
        if missing > 0:
            self.budget.hold(missing)
            self.left_usd += missing

    def paid(self, bound_usd: float, cost_usd: float) -> None:
        """After the call: ``cost_usd`` is spent; what its bound held beyond that stays held."""
        unused = max(bound_usd - cost_usd, 0.0)
        self.left_usd += unused - bound_usd
        self.budget.held_usd += unused - bound_usd
        self.budget.spent_usd += cost_usd

    def release(self) -> None:
        self.budget.held_usd -= self.left_usd
        self.left_usd = 0.0
