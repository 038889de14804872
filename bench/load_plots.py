"""``bench.knee``'s picture: the overhead p99 against the offered rate per router, and where the
CPU of a routed request goes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the file backend

from bench.load_runs import OUTSIDE  # noqa: E402


def write_plots(results: dict[str, Any], out: Path) -> None:
    routers = [name for name in ("random", "mf") if name in results]
    fig, (knee, cpu) = plt.subplots(1, 2, figsize=(14, 4.5))
    for name in routers:
        runs = sorted(results[name]["ladder"], key=lambda run: run["offered_per_s"])
        rates = [run["offered_per_s"] for run in runs]
        # An unanswered request has no overhead: past the knee the curve shows the answered ones.
        knee.plot(rates, [max(run["overhead_p99_ms"], 0.1) for run in runs], marker="o", label=f"{name}: overhead p99")
    knee.axhline(100, color="grey", linestyle="--", label="100 ms")
    knee.set_xscale("log")
    knee.set_yscale("log")
    knee.set_xlabel("offered requests/s (open loop, upstream 2 s)")
    knee.set_ylabel("latency − 2 s, p99 (ms)")
    knee.set_title("The knee")
    knee.legend()
    servers = [name for name in (*routers, "peer_random") if name in results]
    processes: list[str] = []
    for name in servers:
        for process in results[name]["open"]["cpu_ms_per_request"]:
            if process not in OUTSIDE and process not in processes:
                processes.append(process)
    left = [0.0] * len(servers)
    labels = [name.replace("peer_random", "RouteLLM 0.2.0\nrandom") for name in servers]
    colours = plt.get_cmap("tab20").colors
    for number, process in enumerate(processes):
        widths = [results[name]["open"]["cpu_ms_per_request"].get(process, 0.0) for name in servers]
        cpu.barh(labels, widths, left=left, label=process, color=colours[number % len(colours)])
        left = [a + b for a, b in zip(left, widths, strict=True)]
    cpu.set_xlabel("CPU ms per answered request (kernel's count)")
    cpu.set_title("Where a routed request's CPU goes")
    cpu.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(out / "load.png", dpi=110)
    plt.close(fig)
