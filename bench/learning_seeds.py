"""The learner's replays (:mod:`bench.learning`) over several seeds, against the goals it is held
to: ``python -m bench.learning_seeds docs/learning docs/learning/seed-1 docs/learning/seed-2``.

Each folder holds one ``--seed``'s ``<benchmark>.json`` (its own split into traffic and held-out
items, so its own baselines). Printed per benchmark and seed: random, prompt length and the
shipped router on that seed's held-out items, the serving router's APGR after the last round with
at most 300 labels and after the last round, the largest drop a promotion caused, and the probes;
then per benchmark the mean and range over the seeds of the margins the goals name. "Run-to-run
spread" of the probe latency is the range of the idle medians over every round of every seed.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.tables import print_and_write

BENCHMARKS = ("mmlu", "gsm8k", "arena-bench")
CHAT = "arena-bench"


@dataclass(frozen=True)
class Seeded:
    """One seed's replay of one benchmark (its active sampling run), as the goals read it."""

    folder: str
    random: float
    length: float
    shipped: float
    at_300: float
    last: float
    last_labels: int
    largest_drop: float
    promotions: int
    idle_ms: list[float]
    round_ms: list[float]
    failed: int

    @property
    def floor(self) -> float:
        return max(self.random, self.length, self.shipped)


def promotion_drops(start: float, rounds: list[tuple[float, bool]]) -> tuple[float, int]:
    """From an APGR of ``start`` and each round's (APGR, whether it promoted): the largest fall
    a promotion caused (0 when none fell) and the number of promotions."""
    largest, before, promotions = 0.0, start, 0
    for apgr, promoted in rounds:
        if promoted:
            promotions += 1
            largest = max(largest, before - apgr)
        before = apgr
    return largest, promotions


def read(folder: Path, benchmark: str, sampling: str) -> Seeded | None:
    path = folder / f"{benchmark}.json"
    if not path.is_file():
        return None
    found: dict[str, Any] = json.loads(path.read_text())
    points = found["runs"][sampling]
    base = found["baselines"]
    drop, promotions = promotion_drops(
        points[0]["apgr"], [(p["apgr"], p["outcome"].startswith("promoted")) for p in points[1:]]
    )
    probes = [p["probe"] for p in points if p.get("probe")]
    return Seeded(
        str(folder), base["random"], base["prompt length"], points[0]["apgr"],
        [p for p in points if p["labels"] <= 300][-1]["apgr"], points[-1]["apgr"], points[-1]["labels"],
        drop, promotions,
        [p["idle_p50_ms"] for p in probes if p["idle_p50_ms"] is not None],
        [p["round_p50_ms"] for p in probes if p["round_p50_ms"] is not None],
        sum(p["failed"] for p in probes),
    )  # fmt: skip


def summary(folders: list[Path], sampling: str) -> str:
    lines = [
        f"Sampling: {sampling}. Each row one seed's split: APGR on its held-out items.",
        "",
        "| benchmark | seed folder | random | length | shipped | at ≤ 300 labels | last round (labels) "
        "| largest drop by a promotion | promotions | probes failed | probe p50 idle / in the rounds, ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    margins = [
        "",
        "| benchmark | seeds | ≤ 300 labels − max(random, length, shipped) | last round − length "
        "| last round − random | largest drop | in-round p50 inside the idle range |",
        "|---|---:|---|---|---|---:|---:|",
    ]
    for benchmark in BENCHMARKS:
        runs = [r for r in (read(f, benchmark, sampling) for f in folders) if r is not None]
        if not runs:
            continue
        for r in runs:
            lines.append(
                f"| {benchmark} | {r.folder} | {r.random:.3f} | {r.length:.3f} | {r.shipped:.3f} | {r.at_300:.3f} "
                f"| {r.last:.3f} ({r.last_labels}) | {r.largest_drop:.3f} | {r.promotions} | {r.failed} "
                f"| {_range(r.idle_ms)} / {_range(r.round_ms)} |"
            )
        idle = [ms for r in runs for ms in r.idle_ms]
        in_round = [ms for r in runs for ms in r.round_ms]
        inside = sum(min(idle) <= ms <= max(idle) for ms in in_round) if idle else 0
        margins.append(
            f"| {benchmark} | {len(runs)} | {_spread([r.at_300 - r.floor for r in runs])} "
            f"| {_spread([r.last - r.length for r in runs])} | {_spread([r.last - r.random for r in runs])} "
            f"| {max(r.largest_drop for r in runs):.3f} | {inside} of {len(in_round)} |"
        )
    return "\n".join(lines + margins) + "\n"


def _spread(values: list[float]) -> str:
    """Mean (lowest to highest)."""
    return f"{np.mean(values):+.3f} ({min(values):+.3f} to {max(values):+.3f})"


def _range(values: list[float]) -> str:
    return f"{min(values):.0f}–{max(values):.0f}" if values else "–"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", type=Path, nargs="+", help="one bench.learning --out folder per seed")
    parser.add_argument("--sampling", default="active")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    print_and_write(summary(args.folders, args.sampling), "bench.learning_seeds", args.out)


if __name__ == "__main__":
    main()
