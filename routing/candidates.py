"""The models a router chooses among: which upstreams, in which order, scored by which names.

A router's candidates are listed cheapest first and the most capable last. Two candidates are
the weak and strong pair of the paper; more are routed by the rule in :mod:`routing.serving.live_router`
(the cheapest candidate predicted to answer as well as the most capable one), which only kinds
that score any pair of their checkpoint's models can follow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from routing.routers.kind import Candidate, RouterSettings
from routing.routers.kinds import KINDS
from routing.upstreams.config import Price, Upstream


def check_candidates(router: str, config: RouterSettings, upstreams: Mapping[str, Upstream]) -> None:
    """Refuses a router's ``candidates`` that name an unknown or repeated upstream, more than a
    pair for a kind that scores only its own pair, or are listed out of price order."""
    if config.candidates is None:
        return
    keys, where = config.candidates, f"routers.{router}.candidates"
    check_candidate_keys(keys, upstreams, where)
    kind = KINDS.of(config)
    if len(keys) > 2 and not kind.scores_any_model:
        many = ", ".join(name for name in KINDS.names() if KINDS.get(name).scores_any_model)
        raise ValueError(
            f"{where}: a {kind.name} router scores only the pair it was trained for, so it takes two "
            f"candidates, not {len(keys)}; the kinds that route among more are: {many}"
        )
    _check_price_order(keys, upstreams, where)


def check_candidate_keys(keys: Sequence[str], upstreams: Mapping[str, Upstream], where: str) -> None:
    """Refuses a candidate list that names an unknown or repeated upstream, or fewer than two."""
    if len(keys) < 2:
        raise ValueError(f"{where}: names at least two upstreams, cheapest first and the most capable last")
    for key in keys:
        if key not in upstreams:
            raise ValueError(f"{where}: candidate '{key}' names no entry of 'upstreams' ({', '.join(upstreams)})")
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"{where}: '{repeated[0]}' is listed twice; each candidate is a different upstream")


def _check_price_order(keys: Sequence[str], upstreams: Mapping[str, Upstream], where: str) -> None:
    for cheaper, dearer in zip(keys, keys[1:], strict=False):
        low, high = upstreams[cheaper].price, upstreams[dearer].price
        if low is not None and high is not None and _dearer(low, high):
            raise ValueError(
                f"{where}: candidates are listed cheapest first and the most capable last, but '{cheaper}' "
                f"costs more than '{dearer}', which follows it (prices in upstreams.<key>.price)"
            )


def _dearer(a: Price, b: Price) -> bool:
    """Whether price ``a`` is above ``b`` for input and output tokens alike."""
    return a.input_per_million > b.input_per_million and a.output_per_million > b.output_per_million


def resolve_candidates(
    config: RouterSettings, upstreams: Mapping[str, Upstream], default: Sequence[str]
) -> tuple[Candidate, ...]:
    """The router's candidates, cheapest first, each with the name the router scores it by: for
    the cheapest and the most capable the router's own ``weak_model_id`` / ``strong_model_id``,
    else the upstream's ``router_model_id``."""
    keys = list(config.candidates or default)
    strong_id, weak_id = config.scoring_ids()
    own = {keys[0]: weak_id, keys[-1]: strong_id}
    return tuple(
        Candidate(
            key=key,
            model=upstreams[key].model,
            router_model_id=own.get(key) or upstreams[key].router_model_id,
            price=upstreams[key].price,
        )
        for key in keys
    )
