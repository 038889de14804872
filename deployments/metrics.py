"""The request path's events as Prometheus metrics, through ``ray.serve.metrics``.

Ray exports them on each node's metrics endpoint with the prefix ``ray_`` and the tags
``application``, ``deployment`` and ``replica`` added. Tags here are router names, model names
and fixed reason strings: never request content, never a key.
"""

from __future__ import annotations

import asyncio
from collections import Counter as Tally

from ray.serve.metrics import Counter, Gauge, Histogram

from routing.telemetry import Cost, Telemetry

# Ray drops a gauge series that has not been set for two export intervals (20 s by default), so
# the strong shares are set again this often even when no request comes.
SHARE_REFRESH_S = 5.0
SCORE_BUCKETS = [round(0.05 * i, 2) for i in range(1, 20)]
LATENCY_BUCKETS_S = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]


class ServeTelemetry(Telemetry):
    def __init__(self) -> None:
        self.decisions = Counter(
            "routellm_decisions", "Routing decisions, by router and chosen model.", tag_keys=("router", "target")
        )
        self.scores = Histogram(
            "routellm_router_score", "Router scores P(strong wins).", boundaries=SCORE_BUCKETS, tag_keys=("router",)
        )
        self.strong_share = Gauge(
            "routellm_strong_share",
            "Share of this replica's decisions that chose the strong model, by router.",
            tag_keys=("router",),
        )
        self.fallbacks = Counter(
            "routellm_fallbacks",
            "Requests that left their first choice, by reason and the model that answered instead.",
            tag_keys=("reason", "model"),
        )
        self.routing_retries = Counter(
            "routellm_routing_retries",
            "Routing steps tried again after losing a router or embedding replica.",
            tag_keys=("reason",),
        )
        self.upstream_latency = Histogram(
            "routellm_upstream_latency_s",
            "Duration of one upstream attempt (streams: until the first token).",
            boundaries=LATENCY_BUCKETS_S,
            tag_keys=("model", "outcome"),
        )
        self.upstream_errors = Counter(
            "routellm_upstream_errors", "Failed upstream attempts, by model and reason.", tag_keys=("model", "reason")
        )
        self.upstream_retries = Counter(
            "routellm_upstream_retries", "Attempts repeated on the same upstream.", tag_keys=("model", "reason")
        )
        self.tokens = Counter(
            "routellm_tokens", "Tokens the upstreams reported, by direction.", tag_keys=("model", "direction")
        )
        self.cost = Counter("routellm_cost_usd", "Estimated cost of the answers, in USD.", tag_keys=("model",))
        self.cost_all_strong = Counter(
            "routellm_cost_all_strong_usd", "What the strong model would have charged for the same tokens, in USD."
        )
        self.cost_saved = Counter(
            "routellm_cost_saved_usd", "Estimated saving against sending every request to the strong model, in USD."
        )
        self._chosen: dict[str, Tally[bool]] = {}
        self._refresher: asyncio.Task[None] | None = None

    def decision(self, router: str, target: str, strong: bool, score: float) -> None:
        self.decisions.inc(tags={"router": router, "target": target})
        self.scores.observe(score, tags={"router": router})
        self._chosen.setdefault(router, Tally())[strong] += 1
        self._publish_shares()
        if self._refresher is None:
            self._refresher = asyncio.get_running_loop().create_task(self._keep_shares_fresh())

    def _publish_shares(self) -> None:
        for router, chosen in self._chosen.items():
            self.strong_share.set(chosen[True] / chosen.total(), tags={"router": router})

    async def _keep_shares_fresh(self) -> None:
        while True:
            await asyncio.sleep(SHARE_REFRESH_S)
            self._publish_shares()

    def fallback(self, reason: str, model: str) -> None:
        self.fallbacks.inc(tags={"reason": reason, "model": model})

    def routing_retry(self, reason: str) -> None:
        self.routing_retries.inc(tags={"reason": reason})

    def upstream_call(self, model: str, seconds: float, error: str | None) -> None:
        if seconds > 0:
            self.upstream_latency.observe(seconds, tags={"model": model, "outcome": "error" if error else "ok"})
        if error is not None:
            self.upstream_errors.inc(tags={"model": model, "reason": error})

    def upstream_retry(self, model: str, reason: str) -> None:
        self.upstream_retries.inc(tags={"model": model, "reason": reason})

    def usage(self, model: str, prompt_tokens: int, completion_tokens: int, cost: Cost | None) -> None:
        if prompt_tokens > 0:
            self.tokens.inc(prompt_tokens, tags={"model": model, "direction": "in"})
        if completion_tokens > 0:
            self.tokens.inc(completion_tokens, tags={"model": model, "direction": "out"})
        if cost is not None:
            if cost.usd > 0:
                self.cost.inc(cost.usd, tags={"model": model})
            if cost.all_strong_usd > 0:
                self.cost_all_strong.inc(cost.all_strong_usd)
            if cost.saved_usd > 0:
                self.cost_saved.inc(cost.saved_usd)
