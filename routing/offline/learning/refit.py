"""The learner's default way to a challenger: the champion, refit on the own labels.

A refit keeps what the champion knows and learns from the labels how this traffic differs. For
``mf`` that is a logistic regression of "the strong model won" on the prompt embedding, the
prompt's log length *and the champion's own logit*, its L2 strength chosen by cross-validation
inside the labels: with few or noisy labels it leans on the champion, with many it learns the
traffic's own direction. The result is linear in the embedding and the log length, so it is saved
as an mf checkpoint of the serving form σ(d · e + b + w · log(1 + |q|)) (``params.form:
direction``) for the candidates' pair.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from routing.offline.data.schema import Battle
from routing.offline.evaluation.in_domain import INNER_FOLDS, fit_logistic
from routing.routers.checkpoint import Manifest, TrainingRecord, save
from routing.routers.kind import Router
from routing.routers.mf import DIRECTION_FORM, MFRouter, log_length
from routing.routers.model_aliases import canonical_model_name


class RefitError(ValueError):
    """The labels cannot support a refit yet (too few of one outcome)."""


@dataclass(frozen=True)
class RefitJob:
    """A kind's refit is given the champion as it serves the candidates' pair, the own labels'
    battles between the pair's ``strong`` and ``weak`` names, and the embedding function."""

    champion: Router
    champion_checkpoint: str
    strong: str
    weak: str
    battles: Sequence[Battle]
    embed: Callable[[list[str]], np.ndarray] | None
    out: Path
    seed: int


def strong_won(battles: Sequence[Battle], strong: str, weak: str) -> tuple[list[str], np.ndarray]:
    """The prompts of the decisive battles between ``strong`` and ``weak``, and whether the strong one won."""
    prompts, won = [], []
    for battle in battles:
        a, b = canonical_model_name(battle.model_a), canonical_model_name(battle.model_b)
        if {a, b} != {strong, weak} or battle.winner not in ("model_a", "model_b"):
            continue
        prompts.append(battle.prompt)
        won.append((battle.winner == "model_a") == (a == strong))
    return prompts, np.array(won, dtype=np.int64)


def refit_mf(job: RefitJob) -> None:
    champion = job.champion
    assert isinstance(champion, MFRouter) and job.embed is not None
    strong, weak = canonical_model_name(job.strong), canonical_model_name(job.weak)
    prompts, won = strong_won(job.battles, strong, weak)
    counts = np.bincount(won, minlength=2)
    if counts.min() < INNER_FOLDS:
        raise RefitError(
            f"{counts[1]} labels where {strong} won and {counts[0]} where {weak} did: "
            f"a refit needs {INNER_FOLDS} of each"
        )
    embeddings = np.asarray(job.embed(prompts), dtype=np.float64)
    length = log_length(prompts).astype(np.float64)
    champion_logit = champion.logits(prompts, embeddings).astype(np.float64)
    model = fit_logistic(np.column_stack([embeddings, length, champion_logit]), won)
    scaler, regression = model[0], model[-1]
    weights = regression.coef_[0] / scaler.scale_
    intercept = float(regression.intercept_[0] - weights @ scaler.mean_)
    # The champion's logit is d_c · e + b_c + w_c · length: its weight folds into all three.
    on_champion = weights[-1]
    direction = weights[:-2] + on_champion * champion.direction
    bias = intercept + on_champion * champion.bias
    length_weight = float(weights[-2] + on_champion * champion.length_weight)
    manifest = Manifest(
        router="mf",
        embedding=champion.manifest.embedding,
        models=[strong, weak],
        default_strong=strong,
        default_weak=weak,
        params={"form": DIRECTION_FORM, "bias": bias, "length_weight": length_weight},
        training=TrainingRecord(
            hyperparameters={"method": "refit", "champion": job.champion_checkpoint, "C": float(regression.C_)},
            metrics={
                "labels": len(prompts),
                "strong_wins": int(counts[1]),
                "champion_weight": round(float(on_champion), 4),
            },
        ),
    )
    save(job.out, manifest, {"direction": torch.tensor(direction, dtype=torch.float32)})
