"""Runs of ``bench.knee`` side by side, one column each: what each change to the request path did.

    python -m bench.knee_changes before=DIR after=DIR [...] [--out FILE]

Each DIR holds a run's ``results.json``; the runs are compared as made, so make them back to back.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.load_runs import idle_total
from bench.load_table import past_knee
from bench.tables import print_and_write

Figure = Callable[[dict[str, Any]], Any]


def _at(path: str) -> Figure:
    def read(results: dict[str, Any]) -> Any:
        value: Any = results
        for key in path.split("."):
            if not isinstance(value, dict) or key not in value:
                return "–"
            value = value[key]
        return value

    return read


def _past(router: str) -> Figure:
    def read(results: dict[str, Any]) -> str:
        run = results.get(router, {})
        return past_knee(run)[0] if "at_2x" in run else "–"

    return read


def _added_first_token(router: str) -> Figure:
    def read(results: dict[str, Any]) -> Any:
        if router not in results:
            return "–"
        return round(results[router]["first_token_ms"] - results["direct"]["first_token_ms"], 2)

    return read


def _idle(router: str) -> Figure:
    def read(results: dict[str, Any]) -> Any:
        total = idle_total(results.get(router, {}))
        return "–" if total is None else total

    return read


def _process(router: str, *names: str, mode: str = "open") -> Figure:
    """The CPU ms per request of the processes ``names`` together, at 15 req/s (``open``) or 32
    clients (``closed``)."""

    def read(results: dict[str, Any]) -> Any:
        cpu = results.get(router, {}).get(mode, {}).get("cpu_ms_per_request", {})
        found = [cpu[name] for name in names if name in cpu]
        return round(sum(found), 2) if found else "–"

    return read


ROWS: list[tuple[str, Figure]] = [
    ("RouteLLM 0.2.0 `random`: CPU ms per request at 15 req/s", _at("peer_random.open.server_cpu_ms_per_request")),
    ("RouteLLM 0.2.0 `random`: req/s at 32 clients", _at("peer_random.closed.answered_per_s")),
]
for _router in ("random", "mf"):
    ROWS += [
        (
            f"`{_router}`: CPU ms per request at 15 req/s, the service's processes",
            _at(f"{_router}.open.server_cpu_ms_per_request"),
        ),
        (f"`{_router}`: of which Ingress", _process(_router, "Ingress")),
        (f"`{_router}`: of which Serve's HTTP proxy", _process(_router, "ProxyActor")),
        (f"`{_router}`: of which the LLM clients", _process(_router, "LLM-strong", "LLM-weak")),
        (f"`{_router}`: of which ServeController", _process(_router, "ServeController")),
        *([(f"`{_router}`: of which Embedding", _process(_router, "Embedding"))] if _router == "mf" else []),
        (f"`{_router}`: idle, CPU ms per second, the service's processes", _idle(_router)),
        (f"`{_router}`: req/s at 32 clients", _at(f"{_router}.closed.answered_per_s")),
        (f"`{_router}`: Ingress CPU ms per request at 32 clients", _process(_router, "Ingress", mode="closed")),
        (
            f"`{_router}`: the LLM clients' CPU ms per request at 32 clients",
            _process(_router, "LLM-strong", "LLM-weak", mode="closed"),
        ),
        (f"`{_router}`: knee, req/s offered (2 s upstream)", _at(f"{_router}.knee_per_s")),
        (f"`{_router}`: overhead p99 at 80 % of the knee, ms", _at(f"{_router}.at_80_percent.overhead_p99_ms")),
        (f"`{_router}`: past the knee (the ladder above it, and 2× the knee)", _past(_router)),
        (f"`{_router}`: streamed time to first token added at one client, ms", _added_first_token(_router)),
    ]


def table(runs: dict[str, dict[str, Any]]) -> str:
    lines = ["| figure | " + " | ".join(runs) + " |", "|---|" + "---:|" * len(runs)]
    for label, figure in ROWS:
        lines.append(f"| {label} | " + " | ".join(str(figure(results)) for results in runs.values()) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="LABEL=DIR, a bench.knee run's output directory")
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args()
    runs = {}
    for run in args.runs:
        label, _, directory = run.partition("=")
        runs[label] = json.loads((Path(directory) / "results.json").read_text())
    print_and_write(table(runs), "bench.knee_changes", args.out)


if __name__ == "__main__":
    main()
