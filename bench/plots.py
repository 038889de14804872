"""PNG plots of a bench/run.py result: throughput side by side, the slow-upstream overhead, the CPU profile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the file backend
import numpy as np  # noqa: E402


def _save(fig: Any, path: Path, legend: bool) -> None:
    if legend:
        fig.axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _throughput(results: dict[str, Any], out: Path) -> None:
    pairs = [
        ("random", "random"),
        ("mf_openai_embeddings", "mf,\nembeddings API 0 ms"),
        ("mf_openai_embeddings_50ms", "mf,\nembeddings API 50 ms"),
    ]
    labels, ours, theirs = [], [], []
    for key, label in pairs:
        if key in results.get("ours", {}) and key in results.get("peer", {}):
            labels.append(label)
            ours.append(results["ours"][key]["saturated"]["requests_per_s"])
            theirs.append(results["peer"][key]["saturated"]["requests_per_s"])
    if "route_mf" in results.get("ours", {}) and "in_process" in results:
        labels.append("router stage (mf)\nvs one process")
        ours.append(results["ours"]["route_mf"]["saturated"]["requests_per_s"])
        theirs.append(results["in_process"]["router_stage_limit_per_s"])
    if not labels:
        return
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(x - 0.2, ours, 0.4, label="this service (Ray Serve)")
    ax.bar(x + 0.2, theirs, 0.4, label="RouteLLM 0.2.0 server / raw limit")
    ax.set_xticks(x, labels)
    ax.set_ylabel("requests/s")
    ax.set_title("Saturation throughput, 32 clients, same machine")
    _save(fig, out / "throughput.png", legend=True)


def _slow_upstream(results: dict[str, Any], out: Path) -> None:
    slow = results.get("slow_upstream")
    if not slow:
        return
    fig, ax = plt.subplots(figsize=(8, 4))
    for name, run in slow.items():
        overhead = np.sort(np.asarray(run["overhead_ms"]))
        if len(overhead):
            ax.plot(overhead, np.arange(1, len(overhead) + 1) / len(overhead), label=name)
    ax.axvline(100, color="grey", linestyle="--", label="goal: p99 ≤ 100 ms")
    ax.set_xlabel("latency − 2 s upstream time (ms)")
    ax.set_ylabel("fraction of requests")
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlim(left=0)
    ax.set_title("Upstream answering in 2 s")
    _save(fig, out / "slow_upstream.png", legend=True)


def _cpu_profile(results: dict[str, Any], out: Path) -> None:
    profile = results.get("profile", {}).get("cpu_ms_per_request")
    if not profile:
        return
    names = list(profile)[::-1]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.barh(names, [profile[n] for n in names])
    ax.set_xlabel("CPU ms per request")
    ax.set_title("Where the CPU goes: mf router, 32 clients")
    _save(fig, out / "cpu_profile.png", legend=False)


def write_plots(results: dict[str, Any], out: Path) -> None:
    _throughput(results, out)
    _slow_upstream(results, out)
    _cpu_profile(results, out)
