"""Training the matrix-factorisation router on battles (paper §4.2; RouteLLM's training recipe).

Ties are dropped; each battle becomes (winner, loser, prompt) and the loss is the BCE of
σ(δ(winner, q) − δ(loser, q)) against 1. Adam with lr 3e-4 and weight decay 1e-5, batch 64.
Prompts, not battles, are split into train and validation, so the validation score measures
generalisation to unseen prompts; the epoch with the lowest validation loss is kept.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from tqdm.auto import tqdm

from routing.offline.data.schema import Battle
from routing.offline.training.common import (
    Embed,
    Log,
    PairOptions,
    Trained,
    TrainJob,
    held_out_prompts,
    is_decisive,
    seed_everything,
    train_pair_router,
    weights_of,
)
from routing.routers.checkpoint import EmbeddingSpec, Manifest, TrainingRecord
from routing.routers.mf import MFModel


class MFTrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hidden_dim: int = Field(default=128, ge=1)
    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=64, ge=1)
    lr: float = Field(default=3e-4, gt=0)
    weight_decay: float = Field(default=1e-5, ge=0)
    noise_std: float = Field(default=0.0, ge=0, description="Gaussian noise on prompt embeddings while training")
    val_fraction: float = Field(default=0.1, ge=0, lt=1)
    seed: int = 42


def _pairs(
    battles: Sequence[Battle], weights: Sequence[float], model_index: dict[str, int], prompt_index: dict[str, int]
) -> tuple[np.ndarray, np.ndarray]:
    """(winner id, loser id, prompt id) per decisive battle, and each one's weight."""
    rows, kept = [], []
    for b, weight in zip(battles, weights, strict=True):
        if not is_decisive(b):
            continue
        winner, loser = (b.model_a, b.model_b) if b.winner == "model_a" else (b.model_b, b.model_a)
        rows.append((model_index[winner], model_index[loser], prompt_index[b.prompt]))
        kept.append(weight)
    return np.array(rows, dtype=np.int64).reshape(-1, 3), np.array(kept, dtype=np.float32)


def _weighted_loss(margin: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return (torch.nn.functional.softplus(-margin) * weights).sum() / weights.sum()


def _loss_and_accuracy(
    model: MFModel, pairs: torch.Tensor, weights: torch.Tensor, prompts: torch.Tensor
) -> tuple[float, float]:
    with torch.no_grad():
        margin = model(pairs[:, 0], prompts[pairs[:, 2]]) - model(pairs[:, 1], prompts[pairs[:, 2]])
        loss = _weighted_loss(margin, weights).item()
        accuracy = ((margin > 0).float() * weights).sum().item() / weights.sum().item()
    return loss, accuracy


def train(
    battles: Sequence[Battle],
    embed: Embed,
    *,
    embedding_model_id: str,
    default_strong: str,
    default_weak: str,
    config: MFTrainConfig,
    weights: Sequence[float] | None = None,
    log: Log = print,
) -> Trained:
    seed_everything(config.seed)
    model_names = sorted({b.model_a for b in battles} | {b.model_b for b in battles})
    for name in (default_strong, default_weak):
        if name not in model_names:
            raise ValueError(f"model '{name}' appears in no battle")
    prompt_texts = sorted({b.prompt for b in battles})
    model_index = {m: i for i, m in enumerate(model_names)}
    prompt_index = {p: i for i, p in enumerate(prompt_texts)}

    log(f"embedding {len(prompt_texts)} prompts")
    prompts = torch.from_numpy(np.asarray(embed(prompt_texts), dtype=np.float32))
    pairs, pair_weights = _pairs(battles, weights_of(battles, weights), model_index, prompt_index)
    if len(pairs) == 0:
        raise ValueError("no decisive battles (every battle is a tie)")

    held_out = held_out_prompts(prompt_texts, config.val_fraction, config.seed)
    is_val = np.isin(pairs[:, 2], [prompt_index[p] for p in held_out])
    train_pairs, val_pairs = torch.from_numpy(pairs[~is_val]), torch.from_numpy(pairs[is_val])
    train_weights, val_weights = torch.from_numpy(pair_weights[~is_val]), torch.from_numpy(pair_weights[is_val])
    log(
        f"{len(pairs)} decisive battles over {len(model_names)} models: "
        f"{len(train_pairs)} train, {len(val_pairs)} validation ({len(held_out)} held-out prompts)"
    )

    model = MFModel(len(model_names), prompts.shape[1], config.hidden_dim)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    best: tuple[float, int, dict[str, torch.Tensor], float] | None = None
    for epoch in (bar := tqdm(range(1, config.epochs + 1), desc="mf", unit="epoch", disable=None)):
        model.train()
        order = torch.randperm(len(train_pairs), generator=generator)
        for start in range(0, len(order), config.batch_size):
            rows = order[start : start + config.batch_size]
            batch = train_pairs[rows]
            q = prompts[batch[:, 2]]
            if config.noise_std:
                q = q + config.noise_std * torch.randn(q.shape, generator=generator)
            margin = model(batch[:, 0], q) - model(batch[:, 1], q)
            loss = _weighted_loss(margin, train_weights[rows])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        model.eval()
        train_loss, train_acc = _loss_and_accuracy(model, train_pairs, train_weights, prompts)
        held = (val_pairs, val_weights) if len(val_pairs) else (train_pairs, train_weights)
        val_loss, val_acc = _loss_and_accuracy(model, *held, prompts)
        bar.set_postfix(train_loss=f"{train_loss:.4f}", val_loss=f"{val_loss:.4f}", val_acc=f"{val_acc:.3f}")
        log(
            f"epoch {epoch:3d}  train loss {train_loss:.4f} acc {train_acc:.3f}  "
            f"val loss {val_loss:.4f} acc {val_acc:.3f}"
        )
        if best is None or val_loss < best[0]:
            best = (val_loss, epoch, copy.deepcopy(model.state_dict()), val_acc)

    assert best is not None
    val_loss, best_epoch, state, val_acc = best
    manifest = Manifest(
        router="mf",
        embedding=EmbeddingSpec(model_id=embedding_model_id, dim=prompts.shape[1]),
        models=model_names,
        default_strong=default_strong,
        default_weak=default_weak,
        params={"hidden_dim": config.hidden_dim},
        training=TrainingRecord(
            hyperparameters=config.model_dump(),
            metrics={
                "best_epoch": best_epoch,
                "validation_accuracy": round(val_acc, 4),
                "validation_loss": round(val_loss, 4),
                "validation_battles": len(val_pairs),
                "train_battles": len(train_pairs),
            },
        ),
    )
    return Trained(manifest, state)


class MFTrainOptions(MFTrainConfig, PairOptions):
    pass


def train_router(job: TrainJob) -> Trained:
    """``routellm-serve train mf``: ``epochs``, ``lr``, ``batch_size``, ``strong``, ``weak``, ``embedding_model``."""
    return train_pair_router(job, MFTrainOptions, train)
