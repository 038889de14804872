"""Training the ensemble router (:mod:`routing.routers.ensemble`) on many-model outcome tables.

Per source with enough prompts: the difficulty of each prompt (one minus the mean outcome of the
models that answered it, z-scored), and a ridge regression of it on the standardised embedding
and prompt features, in closed form (deterministic: the same data gives the same bytes). A share
of each source's prompts is held out first to report how well its head ranks unseen prompts
there; the saved head then learns from all of them.

The defaults (ridge strength 100, length weight 4, every feature) were chosen by
leave-one-source-out validation over the training sources (``routellm-serve validate``), never
on an evaluation benchmark.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from routing.config import LocalEmbedding
from routing.embeddings.local import LocalEmbedder
from routing.features import FEATURE_NAMES, prompt_features
from routing.offline.data.outcomes import OutcomeTable
from routing.offline.training.common import Embed, Log, Trained, TrainJob, held_out_prompts, job_options
from routing.routers.checkpoint import EmbeddingSpec, Manifest, TrainingRecord


class EnsembleTrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alpha: float = Field(default=100.0, gt=0, description="ridge strength of every head")
    length_weight: float = Field(default=4.0, ge=0, description="weight of the z-scored log length")
    features: list[str] = Field(default_factory=lambda: list(FEATURE_NAMES), description="prompt features")
    min_prompts: int = Field(default=20, ge=2, description="a source with fewer prompts gets no head")
    val_fraction: float = Field(default=0.1, ge=0, lt=1)
    seed: int = 42

    @field_validator("features")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        prompt_features([], tuple(names))  # raises, naming an unknown feature
        return names


class EnsembleTrainOptions(EnsembleTrainConfig):
    embedding_model: str | None = Field(default=None, description="local directory or hub id; default: MiniLM")


def difficulty(table: OutcomeTable) -> tuple[list[str], np.ndarray]:
    """The prompts at least one model answered, and their z-scored difficulty."""
    answered = ~np.isnan(table.values).all(axis=1)
    hard = 1.0 - np.nanmean(table.values[answered], axis=1)
    spread = hard.std()
    prompts = [p for p, kept in zip(table.prompts, answered, strict=True) if kept]
    return prompts, (hard - hard.mean()) / (spread if spread > 0 else 1.0)


def ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Coefficients and intercept, in ``x``'s own units, of a ridge regression on standardised ``x``."""
    center, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - center) / scale
    beta = np.linalg.solve(z.T @ z + alpha * np.eye(z.shape[1]), z.T @ (y - y.mean()))
    coefficients = beta / scale
    return coefficients, float(y.mean() - center @ coefficients)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ranks = [np.argsort(np.argsort(v)).astype(float) for v in (a, b)]
    return float(np.corrcoef(*ranks)[0, 1]) if len(a) > 2 else float("nan")


def train(
    tables: list[OutcomeTable],
    table_weights: list[float],
    embed: Embed,
    *,
    embedding_model_id: str,
    config: EnsembleTrainConfig,
    log: Log = print,
) -> Trained:
    names = tuple(config.features)
    heads = []
    for table, weight in zip(tables, table_weights, strict=True):
        prompts, target = difficulty(table)
        if len(prompts) < config.min_prompts or len(table.models) < 2:
            log(f"{table.source}: {len(prompts)} prompts, {len(table.models)} models: too few for a head")
            continue
        heads.append((table.source, prompts, target, weight))
        log(f"{table.source}: a head on {len(prompts)} prompts graded for {len(table.models)} models")
    if not heads:
        raise ValueError(f"no source has {config.min_prompts} prompts graded for two or more models")
    everything = sorted({p for _, prompts, _, _ in heads for p in prompts})
    log(f"embedding {len(everything)} prompts")
    row_of = {p: i for i, p in enumerate(everything)}
    x_all = np.hstack([np.asarray(embed(everything), dtype=np.float64), prompt_features(everything, names)])
    dim = x_all.shape[1] - len(names)

    coefficients, intercepts, metrics = [], [], {}
    for source, prompts, target, _ in heads:
        x = x_all[[row_of[p] for p in prompts]]
        held = held_out_prompts(prompts, config.val_fraction, config.seed)
        is_held = np.array([p in held for p in prompts])
        if is_held.sum() > 2:
            w, b = ridge(x[~is_held], target[~is_held], config.alpha)
            metrics[f"{source}.validation_spearman"] = round(_spearman(x[is_held] @ w + b, target[is_held]), 4)
        w, b = ridge(x, target, config.alpha)
        coefficients.append(w)
        intercepts.append(b)
        metrics[f"{source}.prompts"] = len(prompts)
    weights = np.array(coefficients)
    predictions = x_all @ weights.T + np.array(intercepts)
    lengths = np.log1p([len(p) for p in everything])
    manifest = Manifest(
        router="ensemble",
        embedding=EmbeddingSpec(model_id=embedding_model_id, dim=dim),
        models=[],
        params={
            "heads": [source for source, _, _, _ in heads],
            "features": list(names),
            "length_weight": config.length_weight,
            "length_mean": round(float(lengths.mean()), 6),
            "length_std": round(float(lengths.std()), 6),
        },
        training=TrainingRecord(hyperparameters=config.model_dump(), metrics=metrics),
    )
    tensors = {
        "coefficients": torch.tensor(weights, dtype=torch.float32),
        "intercepts": torch.tensor(intercepts, dtype=torch.float32),
        "head_mean": torch.tensor(predictions.mean(axis=0), dtype=torch.float32),
        "head_std": torch.tensor(predictions.std(axis=0) + 1e-6, dtype=torch.float32),
        "head_weights": torch.tensor([weight for _, _, _, weight in heads], dtype=torch.float32),
    }
    return Trained(manifest, tensors)


def train_router(job: TrainJob) -> Trained:
    """``routellm-serve train ensemble``: ``alpha``, ``length_weight``, ``features``, ``embedding_model``."""
    options = job_options(EnsembleTrainOptions, job, seed=job.seed)
    embedding = LocalEmbedding(model_path=options.embedding_model)
    return train(
        job.tables,
        job.table_weights,
        job.embed or LocalEmbedder(embedding).encode,
        embedding_model_id=embedding.model_id,
        config=EnsembleTrainConfig(**options.model_dump(exclude={"embedding_model"})),
        log=job.log,
    )
