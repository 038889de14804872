"""Measurements on a running graph: where the CPU goes per request, and Serve's own latency per stage."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Callable
from typing import TypeVar

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

T = TypeVar("T")

STAGE_METRIC = "ray_serve_deployment_processing_latency_ms"
PROXY_METRIC = "ray_serve_http_request_latency_ms"
BATCHED_METRIC = "ray_routellm_batched_requests"
BATCHES_METRIC = "ray_routellm_batches"


def ray_actor_name(process: psutil.Process) -> str | None:
    """The deployment or Ray actor a process runs (``Embedding``, ``ProxyActor``), from Ray's
    process title; None for a process that is not a Ray worker."""
    command = " ".join(process.cmdline())
    if not command.startswith("ray::"):
        return None
    # The title also names the method running at the time (``Embedding.check_health``).
    return command.split()[0].removeprefix("ray::").removeprefix("ServeReplica:router:").split(".")[0]


def _process_label(process: psutil.Process, own_pids: dict[int, str]) -> str:
    if process.pid in own_pids:
        return own_pids[process.pid]
    return ray_actor_name(process) or "Ray's other processes (GCS, raylet, agents)"


def _cpu_seconds(own_pids: dict[int, str]) -> dict[int, tuple[str, float]]:
    seen = {}
    for process in psutil.process_iter():
        try:
            command = " ".join(process.cmdline())
            if process.pid not in own_pids and "ray" not in command:
                continue
            times = process.cpu_times()
            seen[process.pid] = (_process_label(process, own_pids), times.user + times.system)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return seen


def cpu_by_process(run: Callable[[], T], own_pids: dict[int, str]) -> tuple[T, dict[str, float]]:
    """``run()``'s result and the CPU seconds each process used meanwhile, by label: Serve's
    replicas and proxy by name, ``own_pids`` by the label given, the rest of Ray together."""
    own_pids = {os.getpid(): "load generator", **own_pids}
    before = _cpu_seconds(own_pids)
    result = run()
    after = _cpu_seconds(own_pids)
    used: dict[str, float] = defaultdict(float)
    for pid, (label, seconds) in after.items():
        used[label] += seconds - before.get(pid, (label, 0.0))[1]
    return result, dict(sorted(used.items(), key=lambda item: -item[1]))


Totals = dict[str, tuple[float, float]]


def stage_latency_totals(metrics_url: str) -> Totals:
    """(sum of ms, count) of Serve's request latency, per deployment and for the HTTP proxy."""
    return _totals(
        metrics_url,
        {
            f"{STAGE_METRIC}_sum": (0, None),
            f"{STAGE_METRIC}_count": (1, None),
            f"{PROXY_METRIC}_sum": (0, "HTTP proxy"),
            f"{PROXY_METRIC}_count": (1, "HTTP proxy"),
        },
    )


def batch_size_totals(metrics_url: str) -> Totals:
    """(requests, batches) each deployment ran, from the counters: Ray exports a histogram's
    ``_sum`` from its buckets' midpoints, which would put a batch of 1 at 0.5."""
    return _totals(metrics_url, {f"{BATCHED_METRIC}_total": (0, None), f"{BATCHES_METRIC}_total": (1, None)})


def _totals(metrics_url: str, samples: dict[str, tuple[int, str | None]]) -> Totals:
    """Two columns per deployment (or per the name given), each the sum of the samples that
    ``samples`` maps to it: sample name → (column, name or None for the sample's deployment)."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    text = httpx.get(metrics_url, timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in samples:
                column, name = samples[sample.name]
                totals[name or sample.labels.get("deployment", "?")][column] += sample.value
    return {name: (total[0], total[1]) for name, total in totals.items()}


def _settled(read: Callable[[], Totals], quiet_s: float = 12.0, deadline_s: float = 60.0) -> Totals:
    """The totals once Ray's metrics export (every ~10 s) has caught up: unchanged over ``quiet_s``."""
    deadline = time.monotonic() + deadline_s
    last = read()
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        current = read()
        if current == last and current:
            return current
        last = current
    return last


def means_during(run: Callable[[], T], read: Callable[[], Totals]) -> tuple[T, dict[str, float]]:
    """``run()``'s result and, for each histogram ``read`` returns, its mean over the samples
    recorded during the run (Serve's metrics, once exported)."""
    before = _settled(read, quiet_s=2.0)
    result = run()
    after = _settled(read)
    means = {}
    for name, (total, count) in after.items():
        base_total, base_count = before.get(name, (0.0, 0.0))
        if count > base_count:
            means[name] = (total - base_total) / (count - base_count)
    return result, means
