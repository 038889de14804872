"""The paper's routing metrics, computed as its reference evaluation harness computes them.

A router's *curve* has one point per threshold: the share of items sent to the strong model
(``score ≥ threshold``) and the mean quality obtained (the strong model's quality on items
sent to it, the weak model's on the others). The thresholds are the 11 decile edges of the
router's own scores on the benchmark; the last edge routes with a strict ``>``, so the curve
runs from 100 % to 0 % strong calls.

- AUC: trapezoidal area under quality over the strong-call fraction in [0, 1].
- APGR: that area normalised between the weak and the strong model: (AUC − weak) / (strong − weak).
- The paper's 10-point APGR: the mean PGR over the points at 10 %, 20 %, …, 100 % strong calls.
- CPT(x): the least strong-call % at which the curve (linear between points) reaches a quality
  of weak + x·(strong − weak).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DECILES = 10


@dataclass(frozen=True)
class Curve:
    """Points ordered by strong-call share, ascending. ``strong_pct`` in [0, 100]."""

    strong_pct: np.ndarray
    quality: np.ndarray

    @staticmethod
    def of(points: Sequence[tuple[float, float]]) -> Curve:
        ordered = sorted(points)
        return Curve(np.array([p for p, _ in ordered], dtype=float), np.array([q for _, q in ordered], dtype=float))


def threshold_grid(scores: np.ndarray, bins: int = DECILES) -> np.ndarray:
    """The ``bins + 1`` quantile edges of the scores (what pandas ``qcut`` cuts at)."""
    return np.quantile(np.asarray(scores, dtype=float), np.linspace(0.0, 1.0, bins + 1))


def router_curve(
    scores: np.ndarray, strong_quality: np.ndarray, weak_quality: np.ndarray, bins: int = DECILES
) -> tuple[Curve, np.ndarray]:
    """The router's curve over the decile grid of its scores, and the thresholds behind its points."""
    scores = np.asarray(scores, dtype=float)
    edges = threshold_grid(scores, bins)
    points = []
    for i, edge in enumerate(edges):
        strong = scores > edge if i == len(edges) - 1 else scores >= edge
        quality = np.where(strong, strong_quality, weak_quality).mean()
        points.append((100.0 * strong.mean(), float(quality)))
    return Curve.of(points), edges


def auc(curve: Curve) -> float:
    x = curve.strong_pct / 100.0
    return float(np.sum((x[1:] - x[:-1]) * (curve.quality[1:] + curve.quality[:-1]) / 2.0))


def apgr(curve: Curve, weak: float, strong: float) -> float:
    """``nan`` when the two models are equally good on average: there is no gap to recover."""
    if strong == weak:
        return float("nan")
    span = (curve.strong_pct[-1] - curve.strong_pct[0]) / 100.0
    return (auc(curve) - weak * span) / ((strong - weak) * span)


def ten_point_apgr(curve: Curve, weak: float, strong: float) -> float:
    """The paper's approximation: mean PGR at 10 %, 20 %, …, 100 % strong calls (interpolated)."""
    if strong == weak:
        return float("nan")
    targets = np.arange(10, 101, 10, dtype=float)
    quality = np.interp(targets, curve.strong_pct, curve.quality)
    return float(np.mean((quality - weak) / (strong - weak)))


def cpt(curve: Curve, weak: float, strong: float, fraction: float) -> float:
    """Least strong-call % reaching PGR ``fraction``; ``nan`` if the curve never reaches it."""
    target = weak + fraction * (strong - weak)
    x, y = curve.strong_pct, curve.quality
    if y[0] >= target:
        return float(x[0])
    for i in range(1, len(x)):
        if y[i] >= target:
            if y[i] == y[i - 1]:
                return float(x[i])
            return float(x[i - 1] + (target - y[i - 1]) * (x[i] - x[i - 1]) / (y[i] - y[i - 1]))
    return float("nan")


def optimal_curve(strong_quality: np.ndarray, weak_quality: np.ndarray, bins: int = DECILES) -> Curve:
    """The best any router could do at 0, 10, …, 100 % strong calls: strong calls go first to the
    items where the strong model gains most over the weak one, and never where it gains nothing."""
    gain = np.sort(np.asarray(strong_quality, dtype=float) - np.asarray(weak_quality, dtype=float))[::-1]
    positive = np.cumsum(np.maximum(gain, 0.0))
    base = float(np.mean(weak_quality))
    points = []
    for pct in np.linspace(0, 100, bins + 1):
        k = int(round(pct / 100.0 * len(gain)))
        points.append((pct, base + (positive[k - 1] if k else 0.0) / len(gain)))
    return Curve.of(points)


@dataclass(frozen=True)
class RandomBaseline:
    curve: Curve
    apgrs: np.ndarray

    @property
    def interval(self) -> tuple[float, float]:
        """95 % interval of the mean APGR over seeds (normal approximation)."""
        half = 1.96 * self.apgrs.std(ddof=1) / np.sqrt(len(self.apgrs)) if len(self.apgrs) > 1 else 0.0
        return float(self.apgrs.mean() - half), float(self.apgrs.mean() + half)


def random_baseline(
    strong_quality: np.ndarray, weak_quality: np.ndarray, seeds: int = 10, bins: int = DECILES
) -> RandomBaseline:
    """Uniform random scores, one draw per seed; the curve averages the seeds' qualities point by
    point (the reference harness's random router) and each seed's APGR gives the interval."""
    weak, strong = float(np.mean(weak_quality)), float(np.mean(strong_quality))
    curves = [
        router_curve(np.random.default_rng(seed).random(len(strong_quality)), strong_quality, weak_quality, bins)[0]
        for seed in range(seeds)
    ]
    mean = Curve(np.mean([c.strong_pct for c in curves], axis=0), np.mean([c.quality for c in curves], axis=0))
    return RandomBaseline(mean, np.array([apgr(c, weak, strong) for c in curves]))
