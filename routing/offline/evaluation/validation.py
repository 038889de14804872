"""Leave-one-source-out validation: how a router kind does on a source it never saw.

For each training source in turn, every kind is trained on all the other sources and scores the
held-out source's own prompts; the figure is the APGR of the held-out source's pair of models,
the benchmarks' strong and weak model where the source graded both, else its best model by mean
outcome against its median one. Methods and hyperparameters are chosen by the mean over
sources, never on an evaluation benchmark. Random, prompt length and the optimal router stand
beside the kinds in every table.

A kind that scores a chosen pair of models (``mf``, ``sw_ranking``) is trained and scored for the
held-out pair; a model of that pair that the other sources never graded is stood in for by the
model they did grade whose mean outcome on the held-out source is nearest to it.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from routing.offline.data.outcomes import OutcomeTable
from routing.offline.evaluation.metrics import apgr, optimal_curve, random_baseline, router_curve
from routing.offline.evaluation.report import LENGTH_BASELINE
from routing.offline.training.common import Embed, Log, TrainJob
from routing.offline.training.data import TrainingData
from routing.resources import DEFAULT_STRONG, DEFAULT_WEAK
from routing.routers.checkpoint import save
from routing.routers.kind import resolve
from routing.routers.kinds import KINDS

MIN_PROMPTS = 20
RANDOM = "random (10 seeds)"


@dataclass(frozen=True)
class HeldOut:
    """A held-out source: its outcome table, the pair it is scored for and the prompts graded for both."""

    table: OutcomeTable
    strong: str
    weak: str
    prompts: list[str]


@dataclass(frozen=True)
class TrainSettings:
    """How every fold's routers are trained: the shared encoder, the seed, each kind's options."""

    embed: Embed
    seed: int
    options: Mapping[str, Mapping[str, Any]]
    log: Log


@dataclass(frozen=True)
class Fold:
    """One held-out source: its pair, and each router's APGR on its prompts."""

    source: str
    items: int
    strong: str
    weak: str
    apgr: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "items": self.items, "strong": self.strong, "weak": self.weak, "apgr": self.apgr}


def merged_tables(tables: Sequence[OutcomeTable]) -> dict[str, OutcomeTable]:
    """One table per source name (a source split over several files is one source)."""
    by_source: dict[str, list[OutcomeTable]] = {}
    for table in tables:
        by_source.setdefault(table.source, []).append(table)
    merged = {}
    for source, parts in by_source.items():
        models = sorted({m for t in parts for m in t.models})
        values = np.full((sum(len(t.prompts) for t in parts), len(models)), np.nan)
        row = 0
        for t in parts:
            for j, model in enumerate(t.models):
                values[row : row + len(t.prompts), models.index(model)] = t.values[:, j]
            row += len(t.prompts)
        merged[source] = OutcomeTable(source, [p for t in parts for p in t.prompts], models, values)
    return merged


def held_out_pair(table: OutcomeTable) -> tuple[str, str]:
    """The benchmarks' pair where the source graded both, else its best and its median model."""
    if DEFAULT_STRONG in table.models and DEFAULT_WEAK in table.models:
        return DEFAULT_STRONG, DEFAULT_WEAK
    means = table.mean_outcome()
    order = sorted(range(len(table.models)), key=lambda j: (-means[j], table.models[j]))
    return table.models[order[0]], table.models[order[len(order) // 2]]


def stand_in(model: str, table: OutcomeTable, known: set[str], taken: str | None = None) -> str | None:
    """``model`` if ``known``, else the known model graded on ``table`` with the nearest mean outcome."""
    if model in known:
        return model
    means = dict(zip(table.models, table.mean_outcome(), strict=True))
    candidates = [m for m in table.models if m in known and m != taken]
    if not candidates:
        return None
    return min(candidates, key=lambda m: (abs(means[m] - means[model]), m))


def _apgr(scores: np.ndarray, strong: np.ndarray, weak: np.ndarray) -> float:
    return apgr(router_curve(scores, strong, weak)[0], float(weak.mean()), float(strong.mean()))


def leave_one_source_out(
    kinds: Sequence[str],
    data: TrainingData,
    embed: Embed,
    seed: int = 42,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    log: Log = print,
) -> list[Fold]:
    """A :class:`Fold` per source with at least :data:`MIN_PROMPTS` prompts graded for its pair.
    ``options``: per kind, the options its trainer is given (``{"ensemble": {"alpha": 30}}``)."""
    settings = TrainSettings(embed, seed, options or {}, log)
    tables = merged_tables(data.tables)
    folds = []
    for source, table in tables.items():
        strong, weak = held_out_pair(table)
        graded = ~np.isnan(table.column(strong)) & ~np.isnan(table.column(weak))
        if graded.sum() < MIN_PROMPTS:
            log(f"{source}: {int(graded.sum())} prompts graded for {strong} and {weak}: not held out")
            continue
        prompts = [p for p, kept in zip(table.prompts, graded, strict=True) if kept]
        strong_q, weak_q = table.column(strong)[graded], table.column(weak)[graded]
        held = HeldOut(table, strong, weak, prompts)
        fold = Fold(source, len(prompts), strong, weak)
        baseline = random_baseline(strong_q, weak_q, seeds=10)
        fold.apgr[RANDOM] = float(baseline.apgrs.mean())
        fold.apgr[LENGTH_BASELINE] = _apgr(np.array([len(p) for p in prompts], dtype=float), strong_q, weak_q)
        for kind in kinds:
            log(f"{source} held out: training {kind} on the other sources")
            scores = _held_out_scores(kind, held, data, settings)
            fold.apgr[kind] = _apgr(scores, strong_q, weak_q)
        fold.apgr["optimal"] = apgr(optimal_curve(strong_q, weak_q), float(weak_q.mean()), float(strong_q.mean()))
        folds.append(fold)
    return folds


def _held_out_scores(kind_name: str, held: HeldOut, data: TrainingData, settings: TrainSettings) -> np.ndarray:
    kind = KINDS.get(kind_name)
    if kind.trainer is None:
        raise ValueError(f"router kind '{kind_name}' has no trainer to validate")
    source, embed = held.table.source, settings.embed
    kept = [i for i, b in enumerate(data.battles) if b.source != source]
    battles = [data.battles[i] for i in kept]
    weights = None if data.weights is None else [data.weights[i] for i in kept]
    others = [(t, w) for t, w in zip(data.tables, data.table_weights, strict=True) if t.source != source]
    own = dict(settings.options.get(kind_name, {}))
    scored: tuple[str | None, str | None] = (None, None)
    if kind.scores_any_model:
        known = {b.model_a for b in battles} | {b.model_b for b in battles}
        strong = stand_in(held.strong, held.table, known)
        weak = stand_in(held.weak, held.table, known, taken=strong)
        if strong is None or weak is None:
            raise ValueError(f"{source}: no model graded there is in the other sources, so {kind_name} has no pair")
        own.setdefault("strong", strong)
        own.setdefault("weak", weak)
        scored = (own["strong"], own["weak"])
    job = TrainJob(
        kind_name,
        battles,
        weights,
        settings.seed,
        own,
        settings.log,
        [t for t, _ in others],
        [w for _, w in others],
        embed=embed,
    )
    trained = resolve(kind.trainer)(job)
    with tempfile.TemporaryDirectory() as folder:
        save(Path(folder), trained.manifest, trained.tensors)
        router = kind.router(kind.settings(checkpoint=folder), scored)
        embeddings = embed(held.prompts) if kind.needs_embeddings else None
        return np.asarray(router.score(held.prompts, embeddings), dtype=float)


def mean_apgr(folds: Sequence[Fold], router: str) -> float:
    values = [f.apgr[router] for f in folds if router in f.apgr and not math.isnan(f.apgr[router])]
    return float(np.mean(values)) if values else float("nan")


def markdown(folds: Sequence[Fold]) -> str:
    """Rows: random, length, each kind, optimal; a column per held-out source, then the mean."""
    routers = list(folds[0].apgr) if folds else []
    lines = [
        "Leave-one-source-out APGR: each source's prompts scored by routers trained on the other sources.",
        "",
        *(f"- {f.source}: {f.items} prompts, {f.strong} against {f.weak}" for f in folds),
        "",
        "| router | " + " | ".join(f.source for f in folds) + " | mean |",
        "|---|" + "---:|" * (len(folds) + 1),
    ]
    for router in routers:
        cells = [f"{f.apgr[router]:.3f}" for f in folds]
        lines.append(f"| {router} | " + " | ".join(cells) + f" | {mean_apgr(folds, router):.3f} |")
    return "\n".join(lines)


class EmbeddingCache:
    """An :data:`Embed` that encodes each distinct prompt once, however many folds ask for it."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray]) -> None:
        self._encode = encode
        self._vectors: dict[str, np.ndarray] = {}

    def __call__(self, texts: list[str]) -> np.ndarray:
        missing = sorted({t for t in texts if t not in self._vectors})
        if missing:
            self._vectors.update(zip(missing, np.asarray(self._encode(missing), dtype=np.float32), strict=True))
        return np.stack([self._vectors[t] for t in texts]) if texts else np.zeros((0, 0), dtype=np.float32)
