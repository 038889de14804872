"""Routing among many models, measured: quality against cost over thresholds, and AIQ.

A benchmark of many models holds, per prompt, one quality column per model (``<model>``, or a
``scores`` mapping of model to quality) and optionally its cost (``<model>|total_cost``, as in
RouterBench); without cost columns each answer is priced from per-token prices and the prompt's
token count. Rows without a value for one of the models (it was not run on them) are left out.
A router's decision rule is the service's (:mod:`routing.routers.rule`): at
threshold t, the cheapest candidate whose P(the most capable wins over it) is below t.

AIQ is RouterBench's (arXiv 2403.12031, §3): the area under the non-decreasing upper convex hull
of a router's (cost, quality) points, divided by the width of the cost range. Every AIQ here is
taken over one range, the cheapest to the dearest candidate, so they compare; a hull is 0 left of
its cheapest point and flat right of its best one (a single model is then a step at its cost).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from routing.offline.data.files import DataFileError, records
from routing.routers.rule import choose
from routing.upstreams.config import Price

PROMPT_COLUMNS = ("prompt", "question", "query")
COST_SUFFIX = "|total_cost"


@dataclass(frozen=True)
class ModelTable:
    """Per prompt, every model's quality and cost (USD), models cheapest first by mean cost."""

    prompts: list[str]
    models: list[str]
    quality: np.ndarray  # prompts × models
    cost: np.ndarray  # prompts × models
    cost_source: str
    skipped: int = 0  # rows left out: a model was not run on them (no value)

    def subset(self, rows: np.ndarray) -> ModelTable:
        return ModelTable(
            [self.prompts[i] for i in rows], self.models, self.quality[rows], self.cost[rows], self.cost_source
        )


def read_prices(path: Path) -> dict[str, Price]:
    """Per-token prices from a JSON mapping of model to ``input_price`` / ``output_price`` (USD per
    million tokens, as LLMRouter's ``llm_candidates/default_llm.json``) or to ``input_per_million`` /
    ``output_per_million`` (as an upstream's ``price``)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataFileError(f"{path}: not a JSON file of prices ({exc})") from None
    prices = {}
    for model, entry in raw.items() if isinstance(raw, dict) else ():
        pair = [entry.get(k) for k in ("input_price", "output_price")] if isinstance(entry, dict) else []
        if isinstance(entry, dict) and None in pair:
            pair = [entry.get(k) for k in ("input_per_million", "output_per_million")]
        if len(pair) != 2 or not all(isinstance(v, int | float) and v >= 0 for v in pair):
            raise DataFileError(f"{path}: '{model}': expected input_price and output_price in USD per million tokens")
        prices[model] = Price(input_per_million=float(pair[0]), output_per_million=float(pair[1]))
    if not prices:
        raise DataFileError(f"{path}: expected a JSON object of model → prices")
    return prices


def read_model_table(
    files: Sequence[Path],
    models: Sequence[str] | None,
    prices: Mapping[str, Price] | None = None,
    count_tokens: Callable[[list[str]], list[int]] | None = None,
    completion_tokens: int = 256,
) -> ModelTable:
    """The rows of ``files`` as a :class:`ModelTable` of ``models`` (default: every model with a
    cost column, else every model ``prices`` names). Bad or missing values name file, row and column."""
    rows: list[tuple[str, dict[str, Any]]] = []
    for path in files:
        for number, record in records(path):
            flat = {**record, **record["scores"]} if isinstance(record.get("scores"), dict) else record
            prompt = next((flat[c] for c in PROMPT_COLUMNS if isinstance(flat.get(c), str)), None)
            if not prompt:
                raise DataFileError(f"{path}: row {number}: no prompt ({' / '.join(PROMPT_COLUMNS)})")
            rows.append((f"{path}: row {number}", {**flat, "prompt": prompt}))
    if not rows:
        raise DataFileError("no rows in " + ", ".join(map(str, files)))
    columns = set(rows[0][1])
    has_costs = any(c.endswith(COST_SUFFIX) for c in columns)
    if not models:
        known = [c[: -len(COST_SUFFIX)] for c in sorted(columns) if c.endswith(COST_SUFFIX)] if has_costs else []
        models = known or sorted(m for m in (prices or {}) if m in columns)
    if len(models) < 2:
        raise DataFileError("name at least two models (--models A,B,...) whose quality columns the files hold")
    if not has_costs and prices is None:
        raise DataFileError(f"no '<model>{COST_SUFFIX}' columns: give per-token prices (--prices FILE)")
    needed = [*models, *(m + COST_SUFFIX for m in models if has_costs)]
    complete = [(where, row) for where, row in rows if all(row.get(c) not in (None, "") for c in needed)]
    skipped, rows = len(rows) - len(complete), complete
    if not rows:
        raise DataFileError(f"no row has a value for every one of {', '.join(models)}")
    quality = np.array([[_number(where, row, m) for m in models] for where, row in rows])
    if has_costs:
        cost = np.array([[_number(where, row, m + COST_SUFFIX) for m in models] for where, row in rows])
        source = f"per-prompt costs ({COST_SUFFIX})"
    else:
        assert prices is not None and count_tokens is not None
        missing = [m for m in models if m not in prices]
        if missing:
            raise DataFileError(f"--prices: no price for {', '.join(missing)}")
        tokens = np.array(count_tokens([row["prompt"] for _, row in rows]), dtype=np.float64)
        cost = np.stack([prices[m].usd(tokens, completion_tokens) for m in models], axis=1)
        source = f"prices × prompt tokens, and {completion_tokens} completion tokens per answer"
    order = np.argsort(cost.mean(axis=0), kind="stable")
    return ModelTable(
        [row["prompt"] for _, row in rows],
        [models[i] for i in order],
        quality[:, order],
        cost[:, order],
        source,
        skipped,
    )


def _number(where: str, row: Mapping[str, Any], column: str) -> float:
    value = row.get(column)
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise DataFileError(f"{where}: column '{column}': expected a number, got {value!r}")
    return number


def curve(beaten: np.ndarray, quality: np.ndarray, cost: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(threshold, mean cost, mean quality) rows of the rule at each threshold; ``quality`` and
    ``cost`` hold the candidates' columns, cheapest first."""
    rows = np.arange(len(quality))
    points = []
    for t in thresholds:
        chosen = choose(beaten, float(t))
        points.append((float(t), float(cost[rows, chosen].mean()), float(quality[rows, chosen].mean())))
    return np.array(points)


def thresholds_for(beaten: np.ndarray, count: int = 101) -> np.ndarray:
    """0, 1 and the quantiles of the scores: every decision the rule can make, evenly spread."""
    quantiles = np.quantile(beaten.ravel(), np.linspace(0, 1, count))
    return np.unique(np.concatenate([[0.0, 1.0], quantiles, np.nextafter(quantiles, 2.0)]))


def hull(points: np.ndarray) -> np.ndarray:
    """The non-decreasing upper convex hull of (cost, quality) points, as its vertices by cost."""
    ordered = sorted({(float(c), float(q)) for c, q in points})
    best: list[tuple[float, float]] = []
    for c, q in ordered:  # keep points that raise quality as cost grows
        if best and c == best[-1][0]:
            best[-1] = (c, max(q, best[-1][1]))
        elif not best or q > best[-1][1]:
            best.append((c, q))
    upper: list[tuple[float, float]] = []
    for p in best:
        while len(upper) >= 2 and _cross(upper[-2], upper[-1], p) >= 0:
            upper.pop()
        upper.append(p)
    return np.array(upper)


def _cross(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def aiq(points: np.ndarray, low: float, high: float) -> float:
    """RouterBench's AIQ of (cost, quality) points over the cost range [low, high]."""
    vertices = hull(points)
    grid = np.linspace(low, high, 2001)
    values = np.interp(grid, vertices[:, 0], vertices[:, 1], right=vertices[-1, 1])
    values[grid < vertices[0, 0]] = 0.0
    return float(np.trapezoid(values, grid) / (high - low)) if high > low else float(vertices[-1, 1])


def cheapest_at(points: np.ndarray, quality: float) -> float | None:
    """The lowest cost at which the hull of ``points`` reaches ``quality`` (None: never)."""
    vertices = hull(points)
    if vertices[-1, 1] < quality:
        return None
    above = int(np.argmax(vertices[:, 1] >= quality))
    if above == 0:
        return float(vertices[0, 0])
    (c0, q0), (c1, q1) = vertices[above - 1], vertices[above]
    return float(c0 + (quality - q0) * (c1 - c0) / (q1 - q0))


def oracle(quality: np.ndarray, cost: np.ndarray) -> tuple[float, float]:
    """(mean cost, mean quality) of choosing, per prompt, the cheapest model of the best quality."""
    best = quality.max(axis=1, keepdims=True)
    masked = np.where(quality >= best, cost, np.inf)
    chosen = masked.argmin(axis=1)
    rows = np.arange(len(quality))
    return float(cost[rows, chosen].mean()), float(quality[rows, chosen].mean())
