"""The ``model`` field's router syntax: ``router-<router>[-<threshold> | -<percent>% | -$<usd>]``.

- ``router-mf-0.3``: the ``mf`` router with threshold 0.3 (score ≥ 0.3 → strong model);
- ``router-mf-30%``: the threshold that sends 30 % of the router's calibration pool to the
  strong model (see :mod:`routing.calibration`);
- ``router-mf-$0.002``: the threshold whose mean cost per request on that pool, at the
  candidates' prices, is at most $0.002;
- ``router-mf``: the router's configured default (``router-mf-``, with nothing after the
  hyphen, is refused rather than read as it).

Router names never contain hyphens, so the text after the second hyphen is the whole value
(``router-mf-1e-05`` parses).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from routing.errors import InvalidRequest

ROUTER_PREFIX = "router-"


@dataclass(frozen=True)
class RouterAlias:
    router: str
    threshold: float | None = None
    strong_percent: float | None = None
    budget_usd: float | None = None


def parse_router_alias(model: str) -> RouterAlias | None:
    """The router alias in ``model``, or None when ``model`` names an upstream model."""
    if not model.startswith(ROUTER_PREFIX):
        return None
    router, hyphen, threshold_text = model[len(ROUTER_PREFIX) :].partition("-")
    if not router:
        raise InvalidRequest(
            f"'{model}' names no router: use 'router-<router>-<threshold>', e.g. 'router-mf-0.5'",
            param="model",
        )
    if not threshold_text:
        if hyphen:  # a value left out by mistake must not quietly become the router's default
            raise InvalidRequest(
                f"'{model}' has nothing after its last hyphen: use 'router-{router}' for the router's "
                f"default, or a threshold, strong share or budget such as 'router-{router}-0.5', "
                f"'router-{router}-30%' or 'router-{router}-$0.002'",
                param="model",
                code="invalid_threshold",
            )
        return RouterAlias(router)
    if threshold_text.endswith("%"):
        return RouterAlias(router, strong_percent=_percent(threshold_text, model))
    if threshold_text.startswith("$"):
        return RouterAlias(router, budget_usd=_budget(threshold_text, model))
    try:
        threshold = float(threshold_text)
    except ValueError:
        raise InvalidRequest(
            f"threshold '{threshold_text}' in '{model}' is not a number: use a value in [0, 1]",
            param="model",
            code="invalid_threshold",
        ) from None
    if not math.isfinite(threshold) or not 0.0 <= threshold <= 1.0:
        raise InvalidRequest(
            f"threshold {threshold_text} in '{model}' is outside [0, 1]",
            param="model",
            code="invalid_threshold",
        )
    return RouterAlias(router, threshold=threshold)


def _percent(text: str, model: str) -> float:
    try:
        percent = float(text[:-1])
    except ValueError:
        percent = math.nan
    if not math.isfinite(percent) or not 0.0 <= percent <= 100.0:
        raise InvalidRequest(
            f"strong share '{text}' in '{model}' is not a percentage in [0, 100]: e.g. 'router-mf-30%'",
            param="model",
            code="invalid_threshold",
        )
    return percent


def _budget(text: str, model: str) -> float:
    try:
        usd = float(text[1:])
    except ValueError:
        raise InvalidRequest(
            f"budget '{text}' in '{model}' is not a number of USD after the '$': e.g. 'router-mf-$0.002'",
            param="model",
            code="invalid_threshold",
        ) from None
    if not math.isfinite(usd) or usd < 0:
        raise InvalidRequest(
            f"budget '{text}' in '{model}' is negative or not finite: a budget is USD per request, 0 or more",
            param="model",
            code="invalid_threshold",
        )
    return usd
