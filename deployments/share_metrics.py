"""The shares held on live traffic, published by the Router replicas that hold them.

For each share alias (``router-<name>-<p>%``, the router's default share included), the share of
the replica's latest decisions for it that chose the most capable candidate, beside the share
asked for: what the alert ``RouteLLMShareOffTarget`` compares.
"""

from __future__ import annotations

from collections import OrderedDict, deque

from ray.serve.metrics import Gauge

from deployments.gauges import KeptFresh
from routing.serving.live_router import Ranking

# The realized share of a share alias is over this replica's latest decisions for it: recent
# enough to show drift, many enough that binomial noise stays about ±3 points at 30 %.
SHARE_DECISIONS = 200
# Share aliases come from request model names: the latest ones only, so that a client sending
# many distinct percentages cannot grow the label set without bound.
MAX_SHARE_ALIASES = 32


class ShareMetrics(KeptFresh):
    def __init__(self, router: str, most_capable: str) -> None:
        self.router = router
        self.most_capable = most_capable  # the key of the router's most capable candidate
        self.realized = Gauge(
            "routellm_share_realized",
            "Share of this replica's latest decisions for a share alias (router-<name>-<p>%) that chose the "
            "most capable candidate.",
            tag_keys=("router", "alias"),
        )
        self.target = Gauge(
            "routellm_share_target",
            "The share a share alias asks for, as a fraction, beside routellm_share_realized.",
            tag_keys=("router", "alias"),
        )
        self._aliases: OrderedDict[float, deque[bool]] = OrderedDict()

    def decided(self, rankings: list[Ranking]) -> None:
        """Counts a batch's decisions that were asked for a share."""
        for ranking in rankings:
            if ranking.strong_percent is None:
                continue
            percent = ranking.strong_percent
            self._aliases.setdefault(percent, deque(maxlen=SHARE_DECISIONS)).append(
                ranking.order[0] == self.most_capable
            )
            self._aliases.move_to_end(percent)
            while len(self._aliases) > MAX_SHARE_ALIASES:
                self._aliases.popitem(last=False)
        self.publish()

    def set_gauges(self) -> None:
        for percent, decisions in self._aliases.items():
            tags = {"router": self.router, "alias": f"router-{self.router}-{percent:g}%"}
            self.realized.set(sum(decisions) / len(decisions), tags=tags)
            self.target.set(percent / 100, tags=tags)
