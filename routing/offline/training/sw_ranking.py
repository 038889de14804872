"""Building the SW-ranking router: global ratings → tiers → per-prompt tier win counts.

There is nothing to optimise ahead of time (the ratings are refit per request); "training"
fixes the tiers and sums each training prompt's battles into tier-vs-tier win counts. The
held-out figure is the pairwise accuracy, on battles of held-out prompts between different
tiers, of a router built from the remaining prompts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from routing.offline.data.schema import Battle
from routing.offline.training.common import (
    Embed,
    Log,
    PairOptions,
    Trained,
    TrainJob,
    decisive,
    held_out_prompts,
    train_pair_router,
    weights_of,
)
from routing.routers import bradley_terry
from routing.routers.checkpoint import EmbeddingSpec, Manifest, TrainingRecord
from routing.routers.sw_ranking import SWRankingRouter


class SWRankingTrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tiers: int = Field(default=10, ge=2)
    gamma: float = Field(default=10.0, gt=1)
    val_fraction: float = Field(default=0.1, ge=0, lt=1)
    seed: int = 42


def _credit(wins: np.ndarray, i: int, j: int, winner: str, weight: float) -> None:
    """The reference's rule: a decisive battle gives the winner 2 wins, a tie gives each side 1
    (times the battle's weight). A battle of a player against itself says nothing about
    differences and is skipped."""
    if i == j:
        return
    if winner == "model_a":
        wins[i, j] += 2 * weight
    elif winner == "model_b":
        wins[j, i] += 2 * weight
    else:
        wins[i, j] += weight
        wins[j, i] += weight


def _win_counts(battles: Sequence[Battle], weights: Sequence[float], index: dict[str, int]) -> np.ndarray:
    wins = np.zeros((len(index), len(index)))
    for b, weight in zip(battles, weights, strict=True):
        _credit(wins, index[b.model_a], index[b.model_b], b.winner, weight)
    return wins


def _tier_counts(
    battles: Sequence[Battle], weights: Sequence[float], tier_of: dict[str, int], prompts: list[str], tier_count: int
) -> np.ndarray:
    row = {p: i for i, p in enumerate(prompts)}
    wins = np.zeros((len(prompts), tier_count, tier_count))
    for b, weight in zip(battles, weights, strict=True):
        _credit(wins[row[b.prompt]], tier_of[b.model_a], tier_of[b.model_b], b.winner, weight)
    return wins


def build(
    battles: Sequence[Battle],
    embed: Embed,
    *,
    embedding_model_id: str,
    default_strong: str,
    default_weak: str,
    config: SWRankingTrainConfig,
    weights: Sequence[float] | None = None,
    log: Log = print,
) -> Trained:
    weights = weights_of(battles, weights)
    models = sorted({b.model_a for b in battles} | {b.model_b for b in battles})
    for name in (default_strong, default_weak):
        if name not in models:
            raise ValueError(f"model '{name}' appears in no battle")
    index = {m: i for i, m in enumerate(models)}
    ratings = bradley_terry.fit(_win_counts(battles, weights, index))
    assignment = bradley_terry.tiers(ratings, config.tiers)
    tier_of = {m: int(assignment[index[m]]) for m in models}
    tier_count = int(assignment.max()) + 1
    log(f"{len(battles)} battles over {len(models)} models in {tier_count} tiers")

    prompts = sorted({b.prompt for b in battles})
    log(f"embedding {len(prompts)} prompts")
    embeddings = np.asarray(embed(prompts), dtype=np.float32)
    wins = _tier_counts(battles, weights, tier_of, prompts, tier_count)

    manifest = Manifest(
        router="sw_ranking",
        embedding=EmbeddingSpec(model_id=embedding_model_id, dim=embeddings.shape[1]),
        models=models,
        default_strong=default_strong,
        default_weak=default_weak,
        params={
            "gamma": config.gamma,
            "tiers": tier_of,
            # Elo scale, as the paper reports ratings: 400 / ln 10 per unit of β, centred on 1000.
            "elo": {m: round(float(1000 + 400 / np.log(10) * ratings[index[m]]), 1) for m in models},
        },
    )
    tensors = {"prompt_embeddings": torch.from_numpy(embeddings).half(), "tier_wins": torch.from_numpy(wins).float()}
    trained = Trained(manifest, tensors)
    metrics = _held_out_accuracy(battles, prompts, embeddings, wins, trained, config, log)
    trained.manifest = manifest.model_copy(
        update={"training": TrainingRecord(hyperparameters=config.model_dump(), metrics=metrics)}
    )
    return trained


def _held_out_accuracy(
    battles: Sequence[Battle],
    prompts: list[str],
    embeddings: np.ndarray,
    wins: np.ndarray,
    trained: Trained,
    config: SWRankingTrainConfig,
    log: Log,
) -> dict[str, float | int]:
    held_out = held_out_prompts(prompts, config.val_fraction, config.seed)
    train_rows = np.array([p not in held_out for p in prompts])
    tier_of = trained.manifest.params["tiers"]
    tests = [b for b in decisive(battles) if b.prompt in held_out and tier_of[b.model_a] != tier_of[b.model_b]]
    if not tests or train_rows.all():
        return {}
    router = SWRankingRouter(trained.manifest, embeddings[train_rows], wins[train_rows])
    row = {p: i for i, p in enumerate(prompts)}
    test_prompts = sorted({b.prompt for b in tests})
    ratings = dict(zip(test_prompts, router.tier_ratings(embeddings[[row[p] for p in test_prompts]]), strict=True))
    correct = 0
    for b in tests:
        beta = ratings[b.prompt]
        a_favoured = beta[tier_of[b.model_a]] > beta[tier_of[b.model_b]]
        correct += a_favoured == (b.winner == "model_a")
    accuracy = correct / len(tests)
    log(f"held-out pairwise accuracy {accuracy:.4f} on {len(tests)} battles of {len(test_prompts)} held-out prompts")
    return {
        "validation_accuracy": round(accuracy, 4),
        "validation_battles": len(tests),
        "validation_prompts": len(test_prompts),
    }


class SWRankingTrainOptions(SWRankingTrainConfig, PairOptions):
    pass


def train_router(job: TrainJob) -> Trained:
    """``routellm-serve train sw_ranking``: options ``strong``, ``weak``, ``embedding_model``."""
    return train_pair_router(job, SWRankingTrainOptions, build)
