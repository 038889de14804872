"""The request path's events as Prometheus metrics, through ``ray.serve.metrics``.

Ray exports them on each node's metrics endpoint with the prefix ``ray_`` and the tags
``application``, ``deployment`` and ``replica`` added. Tags here are router names, model names
and fixed reason strings: never request content, never a key.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Mapping

from ray.serve.metrics import Counter, Gauge, Histogram

from deployments.gauges import KeptFresh
from routing.serving.telemetry import CandidateChoice, Cost, Telemetry

SCORE_BUCKETS = [round(0.05 * i, 2) for i in range(1, 20)]
LATENCY_BUCKETS_S = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]
ROUTING_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]


class ServeTelemetry(Telemetry, KeptFresh):
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
        self.conversations = Counter(
            "routellm_conversation_decisions",
            "Requests of conversations a router keeps, by how they were decided: fresh, pinned, inherited.",
            tag_keys=("router", "decided"),
        )
        self.pins_held = Gauge("routellm_session_pins", "Conversation pins this ingress replica's store holds.")
        self.store_errors = Counter(
            "routellm_session_store_errors",
            "Session store calls that failed (the request decided afresh, or its pin lost), by operation.",
            tag_keys=("operation",),
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
        self.routing_latency = Histogram(
            "routellm_routing_seconds",
            "Duration of the routing step (embedding and ranking) of a routed request.",
            boundaries=ROUTING_BUCKETS_S,
            tag_keys=("router",),
        )
        self.circuit_open = Gauge(
            "routellm_circuit_open",
            "1 while this ingress's circuit to an upstream is open (its requests fall back at once), else 0.",
            tag_keys=("model",),
        )
        self.upstream_latency = Histogram(
            "routellm_upstream_latency_seconds",
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
        # By the name of the API key that asked ("open" without keys): as many as the config names.
        self.cost = Counter("routellm_cost_usd", "Estimated cost of the answers, in USD.", tag_keys=("model", "key"))
        self.cost_all_strong = Counter(
            "routellm_cost_all_strong_usd",
            "What each answer's router's most capable candidate would have charged for the same tokens, in USD.",
            tag_keys=("key",),
        )
        # A Counter only grows: a saving and an overspend (a dearer model answered) are counted apart.
        self.cost_saved = Counter(
            "routellm_cost_saved_usd",
            "Estimated saving against the most capable candidates, where positive, in USD.",
            tag_keys=("key",),
        )
        self.cost_overspent = Counter(
            "routellm_cost_overspent_usd",
            "Estimated cost above the most capable candidates (a dearer model answered), in USD.",
            tag_keys=("key",),
        )
        self._chosen: dict[str, Tally[bool]] = {}
        self.key_rejected = Gauge(
            "routellm_upstream_key_rejected",
            "1 while an upstream refuses its API key (401 or 403 when the ingress last asked), else 0.",
            tag_keys=("model",),
        )
        self._circuits: Callable[[], Mapping[str, str]] | None = None
        self._rejected: dict[str, bool] = {}
        self._pins: int | None = None

    def watch_circuits(self, states: Callable[[], Mapping[str, str]]) -> None:
        """Publishes ``states()`` (model → circuit state) as ``routellm_circuit_open``, now and
        every :data:`~deployments.gauges.REFRESH_S`: a circuit opens and closes with time, not only on calls."""
        self._circuits = states
        self.publish()

    def decision(self, router: str, target: str, choice: CandidateChoice, score: float, seconds: float) -> None:
        self.decisions.inc(tags={"router": router, "target": target})
        self.scores.observe(score, tags={"router": router})
        self.routing_latency.observe(seconds, tags={"router": router})
        self._chosen.setdefault(router, Tally())[choice.most_capable] += 1
        self.publish()

    def set_gauges(self) -> None:
        for router, chosen in self._chosen.items():
            self.strong_share.set(chosen[True] / chosen.total(), tags={"router": router})
        for model, state in (self._circuits() if self._circuits else {}).items():
            self.circuit_open.set(1.0 if state == "open" else 0.0, tags={"model": model})
        for model, rejected in self._rejected.items():
            self.key_rejected.set(1.0 if rejected else 0.0, tags={"model": model})
        if self._pins is not None:
            self.pins_held.set(self._pins)

    def rejected_keys(self, rejected: Mapping[str, bool]) -> None:
        self._rejected = dict(rejected)
        self.publish()

    def fallback(self, reason: str, model: str) -> None:
        self.fallbacks.inc(tags={"reason": reason, "model": model})

    def conversation(self, router: str, decided: str) -> None:
        self.conversations.inc(tags={"router": router, "decided": decided})

    def pins(self, held: int | None) -> None:
        if held is not None:
            self._pins = held
            self.publish()

    def session_store_error(self, operation: str) -> None:
        self.store_errors.inc(tags={"operation": operation})

    def routing_retry(self, reason: str) -> None:
        self.routing_retries.inc(tags={"reason": reason})

    def upstream_call(self, model: str, seconds: float, error: str | None) -> None:
        if seconds > 0:
            self.upstream_latency.observe(seconds, tags={"model": model, "outcome": "error" if error else "ok"})
        if error is not None:
            self.upstream_errors.inc(tags={"model": model, "reason": error})

    def upstream_retry(self, model: str, reason: str) -> None:
        self.upstream_retries.inc(tags={"model": model, "reason": reason})

    def usage(
        self, model: str, prompt_tokens: int, completion_tokens: int, cost: Cost | None, key: str | None = None
    ) -> None:
        if prompt_tokens > 0:
            self.tokens.inc(prompt_tokens, tags={"model": model, "direction": "in"})
        if completion_tokens > 0:
            self.tokens.inc(completion_tokens, tags={"model": model, "direction": "out"})
        if cost is not None:
            by_key = {"key": key or "open"}
            if cost.usd > 0:
                self.cost.inc(cost.usd, tags={"model": model} | by_key)
            if cost.all_strong_usd > 0:
                self.cost_all_strong.inc(cost.all_strong_usd, tags=by_key)
            if cost.saved_usd > 0:
                self.cost_saved.inc(cost.saved_usd, tags=by_key)
            elif cost.saved_usd < 0:
                self.cost_overspent.inc(-cost.saved_usd, tags=by_key)
