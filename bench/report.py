"""The table of a ``bench.run`` result: each scenario against its baseline, with its goal; and
how a benchmark leaves its markdown table with the measurements beside it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bench import sw_ranking
from bench.tables import met_or_missed

SATURATION = 32
SLOW_UPSTREAM_S = 2.0  # the slow upstream's answer time in slow_upstream
SLOW_CLIENTS = 200


def table(results: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """Rows: scenario, ours, baseline, ratio, goal (met or missed)."""
    rows: list[tuple[str, str, str, str, str]] = []

    def rps(path: tuple[str, ...]) -> float | None:
        node: Any = results
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return float(node["saturated"]["requests_per_s"])

    def verdict(ok: bool, goal: str) -> str:
        return f"{goal}: {'met' if ok else 'missed'}"

    def against(value: float, bound: float, goal: str, at_most: bool = False) -> str:
        return f"{goal}: {met_or_missed(value, bound, at_most)}"

    limit = results.get("in_process", {}).get("router_stage_limit_per_s")
    served = rps(("ours", "route_mf"))
    if limit and served:
        rows.append(
            (
                "router_stage: router stage, req/s (Serve vs one process)",
                f"{served:.1f}",
                f"{limit:.1f}",
                f"{served / limit:.2f}",
                against(served / limit, 0.7, "≥ 0.70"),
            )
        )
    three = rps(("ours", "route_mf_three_candidates"))
    if three and served:
        rows.append(
            (
                "router_stage: router stage, 3 candidates (serve_config.three_models.yaml) vs 2, req/s",
                f"{three:.1f}",
                f"{served:.1f}",
                f"{three / served:.2f}",
                against(three / served, 0.95, "same cost (≥ 0.95)"),
            )
        )
    for name, label, least in (
        ("random", "random", 2),
        ("mf_openai_embeddings", "mf, embeddings API 0 ms", 2),
        ("mf_openai_embeddings_50ms", "mf, embeddings API 50 ms", 4),
    ):
        ours, theirs = rps(("ours", name)), rps(("peer", name))
        if ours and theirs:
            rows.append(
                (
                    f"chat: {label}, req/s at {SATURATION} clients (vs RouteLLM 0.2.0)",
                    f"{ours:.1f}",
                    f"{theirs:.1f}",
                    f"{ours / theirs:.2f}",
                    against(ours / theirs, least, f"≥ {least}"),
                )
            )
    ours_local = rps(("ours", "mf_local"))
    if ours_local:
        rows.append((f"chat: mf, local MiniLM, req/s at {SATURATION} clients", f"{ours_local:.1f}", "–", "–", "–"))
    forward = results.get("in_process", {}).get("one_forward_ms")
    direct_p50 = results.get("direct", {}).get("serial", {}).get("p50_ms")
    for name, label in (("mf_local", "mf, local MiniLM"), ("random", "random")):
        serial = results.get("ours", {}).get(name, {}).get("serial")
        if serial and forward and direct_p50 is not None:
            added = serial["p50_ms"] - direct_p50
            goal = against(added / forward, 1.5, "≤ 1.5", at_most=True) if name == "mf_local" else "–"
            rows.append(
                (
                    f"chat: added latency p50 at 1 client, {label}, ms (vs one MiniLM forward)",
                    f"{added:.1f}",
                    f"{forward:.1f}",
                    f"{added / forward:.2f}",
                    goal,
                )
            )
    peer_serial = results.get("peer", {}).get("random", {}).get("serial")
    if peer_serial and direct_p50 is not None:
        rows.append(
            (
                "chat: RouteLLM 0.2.0 random: added latency p50 at 1 client, ms",
                f"{peer_serial['p50_ms'] - direct_p50:.1f}",
                "–",
                "–",
                "–",
            )
        )
    for name, run in results.get("slow_upstream", {}).items():
        goal = "–"
        if name in (f"mf, {SLOW_CLIENTS} clients", f"random, {SLOW_CLIENTS} clients"):
            goal = verdict(run["overhead_p99_ms"] <= 100 and run["errors"] == 0, "≤ 100 ms, 0 errors")
        rows.append(
            (
                f"slow_upstream: upstream 2 s, {name}: overhead p50 / p99 ms, errors",
                f"{run['overhead_p50_ms']:.0f} / {run['overhead_p99_ms']:.0f}, {run['errors']}",
                f"{run['requests_per_s']:.1f} req/s",
                "–",
                goal,
            )
        )
    sw = results.get("sw_ranking")
    if sw:
        rows.append(
            (
                "sw_ranking: SW ranking, one request at a time, req/s (vs paper)",
                f"{sw['ours_one_at_a_time_per_s']:.0f}",
                f"{sw_ranking.PAPER_REQUESTS_PER_S}",
                f"{sw['ours_one_at_a_time_per_s'] / sw_ranking.PAPER_REQUESTS_PER_S:.0f}",
                "–",
            )
        )
        rows.append(
            (
                "sw_ranking: SW ranking, reference algorithm re-timed here, req/s",
                f"{sw['reference_per_s']:.2f}",
                f"{sw_ranking.PAPER_REQUESTS_PER_S}",
                f"{sw['reference_per_s'] / sw_ranking.PAPER_REQUESTS_PER_S:.2f}",
                "–",
            )
        )
    served_sw = rps(("ours", "route_sw_ranking"))
    if served_sw:
        rows.append(
            (
                f"sw_ranking: SW ranking through Serve (/v1/route, {SATURATION} clients), req/s",
                f"{served_sw:.1f}",
                f"{sw_ranking.PAPER_REQUESTS_PER_S}",
                f"{served_sw / sw_ranking.PAPER_REQUESTS_PER_S:.0f}",
                "–",
            )
        )
    cold = results.get("cold_start")
    if cold:
        rows.append(("cold_start: serve run → first answer, s", f"{cold['first_answer_s']:.1f}", "–", "–", "–"))
        rows.append(
            ("cold_start: serve run → every router answering, s", f"{cold['all_routers_s']:.1f}", "–", "–", "–")
        )
        rows.append(
            (
                f"cold_start: PSS of the whole graph at idle ({cold['processes']} processes), MiB",
                f"{cold['idle_pss_mib']:.0f}",
                "–",
                "–",
                "–",
            )
        )
    return rows


def report(results: dict[str, Any]) -> str:
    """The scenarios' table and the figures behind it, as markdown."""
    machine = results["machine"]
    lines = [
        f"machine: {machine['cpu']}, {machine['cpus']} CPUs, torch {machine['torch']}; {machine['seconds']} s per run",
        "",
        "| scenario | this service | baseline | ratio | goal |",
        "|---|---:|---:|---:|---|",
        *("| " + " | ".join(row) + " |" for row in table(results)),
        "",
        "```",
    ]
    if "in_process" in results:
        rates = results["in_process"]["served_batch_per_s_1_thread"]
        one_ms = results["in_process"]["one_forward_ms_1_thread"]
        lines.append(f"One MiniLM forward of one prompt on 1 torch thread (the Embedding replica's): {one_ms:.1f} ms")
        lines.append("Served batches of 32 prompts, 1 torch thread, embeddings/s:")
        lines += [f"  {name}: {rate:.1f}" for name, rate in rates.items()] + [""]
    if "profile" in results:
        lines.append(f"CPU per request, mf router, {SATURATION} clients (ms of CPU time, by process):")
        lines += [f"  {ms:7.2f}  {name}" for name, ms in results["profile"]["cpu_ms_per_request"].items()]
        lines += ["", f"Mean batch size at {SATURATION} clients, mf router: {results['profile']['mean_batch_size']}"]
        lines += ["", "Serve's mean latency per call at 1 client, mf router (ms, from Serve's metrics):"]
        lines += [f"  {ms:7.2f}  {name}" for name, ms in results["profile"]["stage_latency_ms"].items()] + [""]
    if "cold_start" in results:
        lines.append("PSS at idle by process (MiB):")
        pss = list(results["cold_start"]["pss_by_process_mib"].items())[:12]
        lines += [f"  {mib:8.1f}  {name}" for name, mib in pss] + [""]
    return "\n".join(lines) + "```\n"


def write_table(out: Path | None, text: str, measured: Sequence[BaseModel]) -> None:
    """Prints ``text`` and, given ``out``, writes it there with ``measured`` as JSON beside it."""
    print(text)
    if out is None:
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps([m.model_dump() for m in measured], indent=1) + "\n")
