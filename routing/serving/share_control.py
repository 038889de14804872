"""Strong shares held on live traffic.

``router-<name>-<p>%`` asks for p % of requests to go to the most capable candidate. The
calibration table's threshold for p holds p % only on the prompts it was measured on; on other
traffic the share drifts (a table calibrated on chat prompts sends most maths questions to the
strong model). A router with share control keeps its recent scores and, once it has seen
``min_requests`` of them, takes the threshold for p from them instead: their (100 − p) % quantile.

A quantile of past scores sends p % of the next requests only on average: a block of 200 requests
at 30 % still varies by ±3 points (binomial noise) and more when the traffic's mix shifts. So each
share asked for also counts what its decisions owe since the replica's first request (p / 100 per
request, less one per strong decision), and the share the threshold is taken for is moved by it:
owing d strong decisions, the next request is routed at p + 100·d / ``payback_requests`` %,
paying the difference back within about that many requests. While the window fills, that share's
threshold is the calibration table's, so what the table sends amiss on this traffic is paid back
from the first requests, and a replica that starts mid-traffic holds the share from its first.
The debt is never forgotten (a sliding count of decisions would echo each block into the next)
and is bounded by ±``payback_requests``, where the aimed share is already 0 or 100 %. The shorter
the payback, the closer each block holds p %, and the more strong decisions go to prompts the
score alone would not have sent there (``python -m bench.share_control`` measures both);
``payback_requests: null`` routes by the quantile alone.

Each Router replica keeps its own window and its own debts. Every replica holds its own realized
share to the target, so their sum holds it too; their thresholds differ by the sampling error of
their windows (about √(2·p·(1 − p) / n) in share: 1.4 points at 30 % with n = 2000), and a new
replica routes by the calibration table until it has seen ``min_requests`` scores.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence

import numpy as np

from routing.routers.share_settings import ShareControl

# Distinct shares asked for whose debt is kept: the most recently used ones.
MAX_TRACKED_SHARES = 64


class LiveShares:
    """One router's recent scores (the lowest P(the most capable wins) of each request) and, per
    strong share asked for, how many strong decisions it owes."""

    def __init__(self, control: ShareControl, clock: Callable[[], float] = time.monotonic) -> None:
        self.control = control
        self._clock = clock
        self._scores: deque[tuple[float, float]] = deque(maxlen=control.window_requests)
        self._sorted: np.ndarray | None = None
        self._owed: OrderedDict[float, float] = OrderedDict()

    def aimed(self, percent: float) -> float:
        """The share the next request for ``percent`` is routed at: ``percent``, moved by what its
        decisions owe (at the window's quantile for it, or the table's threshold for it while the
        window fills, so that what the table sends amiss is paid back from the first requests)."""
        payback = self.control.payback_requests
        if payback is None:
            return percent
        return min(max(percent + 100 * self._owed.get(percent, 0.0) / payback, 0.0), 100.0)

    def threshold(self, percent: float) -> float | None:
        """The threshold that holds ``percent`` % on the traffic seen; None while too few scores
        have been seen (the calibration table's threshold for :meth:`aimed` applies)."""
        scores = self._window()
        if len(scores) < self.control.min_requests:
            return None
        aimed = self.aimed(percent)
        if aimed <= 0.0:
            return 1.0
        # The "higher" quantile: at least ``aimed`` % of the window scores at or above it.
        return float(scores[math.ceil((len(scores) - 1) * (1.0 - aimed / 100) - 1e-9)])

    def decided(self, percent: float, most_capable: bool) -> None:
        """Counts a request routed at ``percent`` (by the table or by the window), and whether it
        went to the most capable candidate."""
        limit = self.control.payback_requests or 0.0
        owed = self._owed.pop(percent, 0.0) + percent / 100 - most_capable
        self._owed[percent] = min(max(owed, -limit), limit)
        while len(self._owed) > MAX_TRACKED_SHARES:
            self._owed.popitem(last=False)

    def add_scores(self, scores: Sequence[float]) -> None:
        """Adds a batch's scores to the window."""
        now = self._clock()
        self._scores.extend((now, float(s)) for s in scores)
        self._sorted = None

    @property
    def seen(self) -> int:
        return len(self._window())

    def _window(self) -> np.ndarray:
        if self.control.window_seconds is not None:
            oldest = self._clock() - self.control.window_seconds
            while self._scores and self._scores[0][0] < oldest:
                self._scores.popleft()
                self._sorted = None
        if self._sorted is None:
            self._sorted = np.sort(np.fromiter((s for _, s in self._scores), dtype=np.float64, count=len(self._scores)))
        return self._sorted
