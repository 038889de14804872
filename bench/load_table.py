"""``bench.knee``'s table: each of the load goals against its figure from one run."""

from __future__ import annotations

from typing import Any

from bench.load_runs import idle_total
from bench.tables import met_or_missed

MF_MARGIN_MS = 15.0
SECONDS_MS = 1000.0


def _ratio(a: float, b: float) -> float:
    return round(a / b, 2) if b else float("inf")


def past_knee(run: dict[str, Any]) -> tuple[str, int, float | None]:
    """Every run of a router past its knee (the ladder's steps above it, and 2× the knee): what
    they got, the errors other than 503 + Retry-After, and the worst overhead p99 answered."""
    overloaded = [r for r in run["ladder"] if r["offered_per_s"] > run["knee_per_s"]] + [run["at_2x"]]
    others = sum(r["failed"] + r["shed_without_retry_after"] for r in overloaded)
    shed = sum(r["shed_with_retry_after"] for r in overloaded)
    answered = sum(r["answered"] for r in overloaded)
    worst = max(r["overhead_p99_ms"] for r in overloaded if r["answered"]) if answered else None
    top = max(r["offered_per_s"] for r in overloaded)
    runs = f"{len(overloaded)} run{'s' if len(overloaded) > 1 else ''}"
    text = (
        f"{runs}, up to {top} req/s: {answered} answered (overhead p99 up to {worst} ms), "
        f"{shed} 503 + Retry-After, {others} other errors"
    )
    return text, others, worst


def goal_rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    peer = results.get("peer_random")
    minilm = results["minilm"]
    direct_ttft = results["direct"]["first_token_ms"]
    if "random" in results and peer:
        ours, theirs = (
            results["random"]["open"]["server_cpu_ms_per_request"],
            peer["open"]["server_cpu_ms_per_request"],
        )
        ratio = _ratio(ours, theirs)
        rows.append(
            (
                "`random` CPU ms per request, all its processes, vs RouteLLM 0.2.0's server (≤ 2×)",
                f"{ours} vs {theirs}: {ratio}×",
                met_or_missed(ratio, 2),
            )
        )
        ours_rate, their_rate = results["random"]["closed"]["answered_per_s"], peer["closed"]["answered_per_s"]
        ratio = _ratio(ours_rate, their_rate)
        rows.append(
            (
                "(b) `random` req/s at 32 clients vs RouteLLM 0.2.0 (≥ 2×)",
                f"{ours_rate} vs {their_rate}: {ratio}×",
                met_or_missed(ratio, 2, at_most=False),
            )
        )
    if "mf" in results:
        ours, bound = results["mf"]["open"]["server_cpu_ms_per_request"], minilm["batched_ms"] + MF_MARGIN_MS
        rows.append(
            (
                "`mf` CPU ms per request ≤ one MiniLM forward as served + 15 ms",
                f"{ours} vs {bound:.1f}",
                met_or_missed(ours, bound),
            )
        )
    for router in ("random", "mf"):
        if router not in results:
            continue
        run = results[router]
        knee = run["knee_per_s"]
        rows.append(
            (
                f"`{router}` knee: offered req/s where the overhead p99 crosses 100 ms",
                f"{knee}" if knee else "beyond the top rate",
                "–",
            )
        )
        if "at_80_percent" in run:
            p99 = run["at_80_percent"]["overhead_p99_ms"]
            rows.append((f"`{router}` overhead p99 at 80 % of the knee ≤ 100 ms", f"{p99} ms", met_or_missed(p99, 100)))
            text, others, worst = past_knee(run)
            label = f"`{router}` past the knee: 503 + Retry-After, no other error, none queued for seconds (p99 ≤ 1 s)"
            if others:
                verdict = f"missed: {others} other errors"
            else:
                verdict = "missed: none answered" if worst is None else met_or_missed(worst, SECONDS_MS)
            rows.append((label, text, verdict))
        added = round(run["first_token_ms"] - direct_ttft, 2)
        if router == "mf":
            bound = 1.5 * minilm["one_forward_ms"]
            rows.append(
                (
                    "`mf` streamed TTFT added at one client ≤ 1.5× one MiniLM forward",
                    f"{added} ms vs {bound:.1f}",
                    met_or_missed(added, bound),
                )
            )
        else:
            rows.append(("`random` streamed TTFT added at one client ≤ 10 ms", f"{added} ms", met_or_missed(added, 10)))
    top = results["direct"]["slow_upstream_top_rate"]
    rows.append(
        (
            "direct to the upstream (2 s), k6 at the top rate",
            f"{top['answered_per_s']} of {top['offered_per_s']} req/s, overhead p99 {top['overhead_p99_ms']} ms, "
            f"{top['dropped_by_generator']} dropped",
            "–",
        )
    )
    return rows


def report(results: dict[str, Any]) -> str:
    """The goals table and the figures behind it, as markdown."""
    machine, minilm = results["machine"], results["minilm"]
    lines = [
        f"machine: {machine['cpu']}, {machine['cpus']} CPUs, torch {machine['torch']}; {machine['seconds']:g} s a run; "
        f"MiniLM on one torch thread: one forward {minilm['one_forward_ms']} ms, "
        f"{minilm['batched_ms']} ms per prompt in batches as served",
        "",
        "| goal | measured | |",
        "|---|---|---|",
        *("| " + " | ".join(row) + " |" for row in goal_rows(results)),
        "",
        "```",
    ]
    for name in ("random", "mf"):
        total = idle_total(results.get(name, {}))
        if total is not None:
            idle = results[name]["idle_cpu_ms_per_s"]
            lines.append(f"CPU ms per second, {name}, idle ({total:.1f} in all):")
            lines += [f"  {ms:8.2f}  {process}" for process, ms in sorted(idle.items(), key=lambda i: -i[1])] + [""]
    for name in ("random", "mf", "peer_random"):
        for mode in ("open", "closed") if name in results else ():
            run = results[name][mode]
            load = f"{run['offered_per_s']:g} req/s offered" if mode == "open" else f"{run['clients']} clients"
            lines.append(f"CPU ms per request, {name}, {load} ({run['answered_per_s']} answered/s):")
            ranked = sorted(run["cpu_ms_per_request"].items(), key=lambda item: -item[1])
            lines += [f"  {ms:8.2f}  {process}" for process, ms in ranked] + [""]
    for name in ("random", "mf"):
        if name not in results:
            continue
        lines.append(f"{name} under a 2 s upstream, open loop, offered req/s: overhead p50 / p99 ms, answered,")
        lines.append("503 + Retry-After, other errors (the last two rows: 80 % and 2x the knee):")
        extra = [results[name][k] for k in ("at_80_percent", "at_2x") if k in results[name]]
        for run in results[name]["ladder"] + extra:
            others = run["failed"] + run["shed_without_retry_after"]
            overhead = f"{run['overhead_p50_ms']} / {run['overhead_p99_ms']}"
            lines.append(
                f"  {run['offered_per_s']:>6g}: {overhead}, {run['answered']}, {run['shed_with_retry_after']}, {others}"
            )
        lines.append("")
    return "\n".join([*lines, "```", ""])
