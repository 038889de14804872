"""What the replicas' ``check_health`` methods share: Serve calls each one periodically and
restarts a replica whose check raises or takes longer than its health-check timeout.

A model replica proves itself by its traffic: while batches finish, a check costs nothing. Only
an idle replica computes a probe, so a check never takes a forward pass from the request path.
"""

from __future__ import annotations

import time

from routing.serving.batching import AdaptiveBatcher

HEALTH_PROBE = "health check"
# Well inside Serve's default health_check_timeout_s (30 s), so a slow probe is reported as ours.
HEALTH_PROBE_TIMEOUT_S = 20.0
# A replica with no finished batch for this long is probed (Serve checks every 10 s by default).
IDLE_PROBE_AFTER_S = 30.0


def needs_probe(batcher: AdaptiveBatcher, idle_after_s: float = IDLE_PROBE_AFTER_S) -> bool:
    """Whether a replica must prove itself with a probe: not while a batch runs or one finished
    within ``idle_after_s``. A batch running longer than the probe's own time limit fails the
    check, as a probe that slow would."""
    busy = batcher.busy_for()
    if busy > HEALTH_PROBE_TIMEOUT_S:
        raise RuntimeError(f"a batch has been running for {busy:.0f} s")
    if busy > 0:
        return False
    last = batcher.last_batch_done
    return last is None or time.monotonic() - last > idle_after_s
