"""``routellm-serve evaluate --models A,B,C``: a router among many models, cross-fitted on a
benchmark of many models (:mod:`routing.offline.evaluation.many_models`), against every single model,
the same router restricted to its best pair, random and prompt-length routing, and the oracle."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from routing.config import LocalEmbedding
from routing.embeddings.local import LocalEmbedder
from routing.offline.commands import Echo, to_stderr
from routing.offline.data.schema import Battle
from routing.offline.evaluation.figures import saved_figure
from routing.offline.evaluation.many_models import (
    ModelTable,
    aiq,
    cheapest_at,
    curve,
    oracle,
    read_model_table,
    read_prices,
    thresholds_for,
)
from routing.offline.training.common import Log
from routing.offline.training.mf import MFTrainConfig, train
from routing.routers.mf import MFModel


@dataclass(frozen=True)
class Line:
    """One row of the report: a router's curve (or a model's point) summed up."""

    name: str
    aiq: float
    cost: float  # the lowest cost at which it reaches the best single model's quality (nan: never)
    quality: float  # its best quality
    points: list[tuple[float, float]]  # (mean cost, mean quality)
    thresholds: list[float] = field(default_factory=list)  # a router's threshold at each point


def evaluate_models(
    files: Sequence[Path],
    models: Sequence[str] | None = None,
    prices: Path | None = None,
    completion_tokens: int = 256,
    folds: int = 5,
    seed: int = 42,
    epochs: int = 10,
    embedding_model: str | None = None,
    out: Path | None = None,
    echo: Echo = print,
    log: Log = to_stderr,
) -> list[Line]:
    if folds < 2:
        raise ValueError("--folds: cross-fitting needs at least 2 folds")
    embedder = LocalEmbedder(LocalEmbedding(model_path=embedding_model))
    priced = read_prices(prices) if prices else None
    table = read_model_table(files, models, priced, embedder.count_tokens, completion_tokens)
    log(f"{len(table.prompts)} prompts, {len(table.models)} models (cheapest first): {', '.join(table.models)}")
    log("embedding the prompts")
    unique = sorted(set(table.prompts))
    vectors = embedder.encode(unique)
    index = {p: i for i, p in enumerate(unique)}
    embeddings = vectors[[index[p] for p in table.prompts]]
    merits = cross_fitted_merits(table, embeddings, folds, seed, epochs, log)
    lines = report_lines(table, merits, seed, frontier(table) if models is None else None)
    echo(render(table, lines, folds))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        results = {"models": table.models, "cost": table.cost_source, "lines": [asdict(x) for x in lines]}
        (out / "many_models.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        plot(table, lines, out / "many_models.png")
        echo(f"wrote {out / 'many_models.json'} and {out / 'many_models.png'}")
    return lines


def cross_fitted_merits(
    table: ModelTable, embeddings: np.ndarray, folds: int, seed: int, epochs: int, log: Log
) -> np.ndarray:
    """δ(m, q) of an MF router for every prompt and model, each prompt scored by a router trained
    on the other folds' battles (every pair of models on a prompt, the better quality winning)."""
    unique = sorted(set(table.prompts))  # rows of one prompt share a fold: none is scored by what saw it
    fold_of_prompt = dict(zip(unique, np.random.default_rng(seed).permutation(len(unique)) % folds, strict=True))
    fold_of = np.array([fold_of_prompt[p] for p in table.prompts])
    merits = np.zeros(table.quality.shape, dtype=np.float64)
    vectors = dict(zip(table.prompts, embeddings, strict=True))

    def embed(texts: list[str]) -> np.ndarray:
        return np.stack([vectors[t] for t in texts])

    for fold in range(folds):
        held = np.flatnonzero(fold_of == fold)
        battles = _battles(table.subset(np.flatnonzero(fold_of != fold)))
        if not battles:
            raise ValueError("no prompt on which two models differ in quality: nothing to learn from")
        trained = train(
            battles,
            embed,
            embedding_model_id="cross-fit",
            default_strong=battles[0].model_a,
            default_weak=battles[0].model_b,
            config=MFTrainConfig(epochs=epochs, seed=seed + fold),
            log=lambda _: None,
        )
        model = MFModel(len(trained.manifest.models), embeddings.shape[1], trained.manifest.params["hidden_dim"])
        model.load_state_dict(trained.tensors)
        with torch.no_grad():
            u = model.model_vectors().numpy()
        index = {m: i for i, m in enumerate(trained.manifest.models)}
        for column, name in enumerate(table.models):
            if name in index:
                merits[held, column] = embeddings[held] @ u[index[name]]
        log(f"fold {fold + 1}/{folds}: {len(battles)} decisive battles")
    return merits


def _battles(table: ModelTable) -> list[Battle]:
    battles = []
    for row, prompt in enumerate(table.prompts):
        q = table.quality[row]
        for a, b in itertools.combinations(range(len(table.models)), 2):
            if q[a] != q[b]:
                winner = "model_a" if q[a] > q[b] else "model_b"
                battles.append(Battle(prompt=prompt, model_a=table.models[a], model_b=table.models[b], winner=winner))
    return battles


def _beaten(merits: np.ndarray, columns: Sequence[int]) -> np.ndarray:
    """P(the last of ``columns`` wins over each of the others), one column each."""
    top = merits[:, [columns[-1]]]
    return 1.0 / (1.0 + np.exp(-(top - merits[:, list(columns[:-1])])))


def frontier(table: ModelTable) -> list[int]:
    """The models better on mean quality than every cheaper one: the candidates a user would list,
    cheapest first, the most capable last."""
    means = table.quality.mean(axis=0)
    return [i for i in range(len(table.models)) if all(means[i] > means[j] for j in range(i))]


def report_lines(
    table: ModelTable, merits: np.ndarray, seed: int, candidates: Sequence[int] | None = None
) -> list[Line]:
    """The router over ``candidates`` (default: every model, by cost), the router's best pair of
    any two models, random and length routing over the candidates, the oracle and each single
    model, with AIQ over the cost range of the models' mean costs."""
    means_cost, means_quality = table.cost.mean(axis=0), table.quality.mean(axis=0)
    low, high = float(means_cost.min()), float(means_cost.max())
    target = float(means_quality.max())
    everyone = list(candidates or range(len(table.models)))

    def line(name: str, points: np.ndarray, thresholds: Sequence[float] = ()) -> Line:
        reached = cheapest_at(points, target)
        return Line(
            name,
            round(aiq(points, low, high), 5),
            float("nan") if reached is None else reached,
            float(points[:, 1].max()),
            [(float(c), float(q)) for c, q in points],
            [float(t) for t in thresholds],
        )

    def routed(name: str, beaten: np.ndarray, columns: Sequence[int]) -> Line:
        rows = curve(beaten, table.quality[:, columns], table.cost[:, columns], thresholds_for(beaten))
        return line(name, rows[:, 1:], rows[:, 0])

    named = ", ".join(table.models[i] for i in everyone)
    lines = [routed(f"mf, {len(everyone)} candidates: {named}", _beaten(merits, everyone), everyone)]
    pairs = [
        routed(f"mf, {table.models[a]} + {table.models[b]}", _beaten(merits, [a, b]), [a, b])
        for a, b in itertools.combinations(range(len(table.models)), 2)
    ]
    lines.append(max(pairs, key=lambda x: x.aiq))
    noise = np.random.default_rng(seed).random((len(table.prompts), len(everyone) - 1))
    lines.append(routed("random", noise, everyone))
    lengths = np.array([len(p) for p in table.prompts], dtype=np.float64)
    percentile = np.argsort(np.argsort(lengths, kind="stable"), kind="stable") / max(len(lengths) - 1, 1)
    lines.append(routed("prompt length", np.repeat(percentile[:, None], len(everyone) - 1, axis=1), everyone))
    lines.append(line("oracle", np.array([oracle(table.quality, table.cost)])))
    lines.append(line("single models, mixed", np.stack([means_cost, means_quality], axis=1)))
    lines += [line(m, np.array([[means_cost[i], means_quality[i]]])) for i, m in enumerate(table.models)]
    return lines


def render(table: ModelTable, lines: Sequence[Line], folds: int) -> str:
    best = int(np.argmax(table.quality.mean(axis=0)))
    best_cost = float(table.cost[:, best].mean())
    out = [
        f"{len(table.prompts)} prompts ({table.skipped} without every model's value left out), "
        f"{len(table.models)} models; cost: {table.cost_source}; routers cross-fitted over {folds} folds",
        f"best single model: {table.models[best]}, quality {table.quality[:, best].mean():.4f} "
        f"at ${best_cost:.6f} per prompt",
        "",
        "| router or model | AIQ | best quality | cost to reach the best single model's quality |",
        "|---|---|---|---|",
    ]
    for x in lines:
        reach = "never" if np.isnan(x.cost) else f"${x.cost:.6f} ({100 * x.cost / best_cost:.1f} %)"
        out.append(f"| {x.name} | {x.aiq:.4f} | {x.quality:.4f} | {reach} |")
    router = lines[0]
    out += ["", f"{router.name}: the curve over thresholds", "| threshold | mean cost | mean quality |"]
    out.append("|---|---|---|")
    order = np.argsort(router.thresholds)
    for i in order[np.linspace(0, len(order) - 1, 11).round().astype(int)]:
        cost, quality = router.points[i]
        out.append(f"| {router.thresholds[i]:.4f} | ${cost:.6f} | {quality:.4f} |")
    return "\n".join(out)


def plot(table: ModelTable, lines: Sequence[Line], path: Path) -> None:
    """Quality against cost: the routers' curves, the oracle and each single model as a point."""
    singles = set(table.models)
    with saved_figure(path, (8, 5.5)) as axes:
        for x in lines:
            points = np.array(x.points)
            if x.name in singles:
                axes.scatter(points[:, 0], points[:, 1], marker="s", s=18)
                axes.annotate(x.name, points[0], fontsize=6, xytext=(3, 3), textcoords="offset points")
            elif x.name == "oracle":
                axes.scatter(points[:, 0], points[:, 1], marker="*", s=80, color="gold", label="oracle")
            elif x.name != "single models, mixed":
                ordered = points[np.argsort(points[:, 0])]
                axes.plot(ordered[:, 0], ordered[:, 1], label=f"{x.name} (AIQ {x.aiq:.3f})", linewidth=1.2)
        axes.set_xscale("log")
        axes.set_xlabel("mean cost per prompt (USD, log scale)")
        axes.set_ylabel("mean quality")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
