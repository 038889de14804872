"""Evaluating routers on a benchmark: curves, the paper's metrics, a table, JSON and a plot."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from routing.offline.evaluation.benchmark import Benchmark
from routing.offline.evaluation.figures import saved_figure
from routing.offline.evaluation.metrics import (
    Curve,
    apgr,
    auc,
    cpt,
    optimal_curve,
    random_baseline,
    router_curve,
    ten_point_apgr,
)

CPT_LEVELS = (0.2, 0.5, 0.8)
# The one-line heuristic every report shows beside random and optimal: longer prompts go to the
# strong model. A router that does not beat it is not worth its model.
LENGTH_BASELINE = "length (prompt characters)"


@dataclass(frozen=True)
class RouterResult:
    router: str
    curve: Curve
    apgr: float
    apgr_10_point: float
    auc: float
    cpt: dict[str, float]
    apgr_interval: tuple[float, float] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "router": self.router,
            "apgr": self.apgr,
            "apgr_95_interval": list(self.apgr_interval) if self.apgr_interval else None,
            "apgr_10_point": self.apgr_10_point,
            "auc": self.auc,
            **{f"cpt_{k}": v for k, v in self.cpt.items()},
            "curve": {"strong_pct": self.curve.strong_pct.tolist(), "quality": self.curve.quality.tolist()},
        }


SETTINGS = {
    "out-of-domain": "out-of-domain: the checkpoints as shipped, trained without the benchmark",
    "in-domain": "in-domain, cross-fitted: each item scored by a router that learnt from the other folds",
}


@dataclass(frozen=True)
class BenchmarkReport:
    benchmark: str
    setting: str
    items: int
    strong: str
    weak: str
    strong_quality: float
    weak_quality: float
    results: list[RouterResult]

    def as_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "setting": self.setting,
            "items": self.items,
            "strong": {"model": self.strong, "quality": self.strong_quality},
            "weak": {"model": self.weak, "quality": self.weak_quality},
            "routers": [r.as_dict() for r in self.results],
        }


def _result(
    name: str, curve: Curve, weak: float, strong: float, interval: tuple[float, float] | None = None
) -> RouterResult:
    return RouterResult(
        router=name,
        curve=curve,
        apgr=apgr(curve, weak, strong),
        apgr_10_point=ten_point_apgr(curve, weak, strong),
        auc=auc(curve),
        cpt={f"{round(100 * x)}%": cpt(curve, weak, strong, x) for x in CPT_LEVELS},
        apgr_interval=interval,
    )


def evaluate(
    benchmark: Benchmark,
    strong: str,
    weak: str,
    scores: Mapping[str, np.ndarray | None],
    random_seeds: int = 10,
    setting: str = "out-of-domain",
) -> BenchmarkReport:
    """Every router's curve and metrics from its scores on the benchmark's prompts, then the
    prompt-length baseline and the optimal router. ``None`` instead of scores stands for the
    paper's random baseline: uniform scores, averaged over ``random_seeds`` draws, with a 95 %
    interval of its APGR."""
    strong_q, weak_q = benchmark.pair(strong, weak)
    s, w = float(strong_q.mean()), float(weak_q.mean())
    results = []
    for name, router_scores in scores.items():
        if router_scores is None:
            baseline = random_baseline(strong_q, weak_q, seeds=random_seeds)
            results.append(_result(f"{name} ({random_seeds} seeds)", baseline.curve, w, s, baseline.interval))
        else:
            curve, _ = router_curve(router_scores, strong_q, weak_q)
            results.append(_result(name, curve, w, s))
    lengths = np.array([len(prompt) for prompt in benchmark.prompts], dtype=float)
    results.append(_result(LENGTH_BASELINE, router_curve(lengths, strong_q, weak_q)[0], w, s))
    results.append(_result("optimal", optimal_curve(strong_q, weak_q), w, s))
    return BenchmarkReport(benchmark.name, setting, len(benchmark.prompts), strong, weak, s, w, results)


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1f}%"


def _ratio(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def markdown(report: BenchmarkReport) -> str:
    lines = [
        f"### {report.benchmark}, {report.setting} ({report.items} items; strong {report.strong} "
        f"{report.strong_quality:.4f}, weak {report.weak} {report.weak_quality:.4f})",
        "",
        f"_{SETTINGS.get(report.setting, report.setting)}._",
        "",
        "| router | APGR | APGR (10-point mean) | CPT(20%) | CPT(50%) | CPT(80%) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in report.results:
        interval = f" ({r.apgr_interval[0]:.3f}–{r.apgr_interval[1]:.3f})" if r.apgr_interval else ""
        lines.append(
            f"| {r.router} | {_ratio(r.apgr)}{interval} | {_ratio(r.apgr_10_point)} | "
            + " | ".join(_pct(r.cpt[k]) for k in ("20%", "50%", "80%"))
            + " |"
        )
    return "\n".join(lines)


BASELINE_STYLES: dict[str, dict[str, Any]] = {
    "optimal": {"linestyle": "--", "color": "grey"},
    LENGTH_BASELINE: {"linestyle": "-.", "color": "black", "marker": "x", "markersize": 3},
}


def plot(report: BenchmarkReport, path: Path) -> None:
    """The paper's figure: quality against strong-model calls, one curve per router."""
    with saved_figure(path, (7, 5)) as axes:
        for r in report.results:
            style = BASELINE_STYLES.get(r.router, {"marker": "o", "markersize": 3})
            axes.plot(r.curve.strong_pct, r.curve.quality, label=f"{r.router} (APGR {r.apgr:.3f})", **style)
        axes.axhline(report.strong_quality, color="red", linestyle=":", label=f"strong: {report.strong}")
        axes.axhline(report.weak_quality, color="blue", linestyle=":", label=f"weak: {report.weak}")
        axes.set_xlabel("strong model calls (%)")
        axes.set_ylabel("quality")
        axes.set_title(f"Router performance ({report.benchmark}, {report.setting})")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
