"""The response headers the service adds, shared by the HTTP ingress and the in-process client."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from routing.errors import ServiceError, ServiceUnavailable
from routing.protocol import RouteDecision

if TYPE_CHECKING:  # the HTTP layer's error path needs no engine
    from routing.serving.answered import Outcome


def route_headers(outcome: Outcome) -> dict[str, str]:
    """The ``x-route-*`` headers of a chat completion: the decision, and the fallback if one was taken."""
    decision = outcome.decision
    headers = {"x-route-target": decision.target if decision else outcome.model}
    if decision is not None:
        headers |= {
            "x-route-router": decision.router,
            "x-route-score": f"{decision.score:.6f}",
            "x-route-threshold": f"{decision.threshold:g}",
        }
        if decision.candidates:
            headers["x-route-candidates"] = ",".join(f"{model}={p:.4f}" for model, p in decision.candidates.items())
        if decision.strong_percent is not None:
            headers["x-route-strong-percent"] = f"{decision.strong_percent:g}"
        if decision.budget_usd is not None:
            headers["x-route-budget"] = f"{decision.budget_usd:g}"
        headers |= decision_headers(decision)
    if outcome.fallback:
        headers["x-route-fallback"] = outcome.fallback
    return headers


def decision_headers(decision: RouteDecision) -> dict[str, str]:
    """What a decision says outside a body: the checkpoint that scored, and the conversation it
    belongs to with how it was decided (``fresh``, ``pinned``, ``inherited``)."""
    headers = {}
    if decision.checkpoint is not None:
        headers["x-route-checkpoint"] = decision.checkpoint
    if decision.session is not None:
        headers["x-route-session"] = decision.session
    if decision.decided is not None:
        headers["x-route-decided"] = decision.decided
    if decision.session_error is not None:  # one line of plain text, whatever the store's error said
        headers["x-route-session-error"] = " ".join(decision.session_error.split()).encode("ascii", "replace").decode()
    return headers


def error_headers(exc: ServiceError) -> dict[str, str]:
    """``Retry-After`` for a service that is busy and knows when to be asked again."""
    if isinstance(exc, ServiceUnavailable) and exc.retry_after_s is not None:
        return {"retry-after": str(max(1, math.ceil(exc.retry_after_s)))}
    return {}
