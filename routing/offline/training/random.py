"""The random router has nothing to learn: its checkpoint is a seed, and its held-out figure
is the chance level the trained routers must beat."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from routing.offline.data.schema import Battle
from routing.offline.training.common import Trained, TrainJob, decisive, held_out_prompts, job_options
from routing.routers.checkpoint import Manifest, TrainingRecord


def train(battles: Sequence[Battle], seed: int, val_fraction: float = 0.1) -> Trained:
    held_out = held_out_prompts([b.prompt for b in battles], val_fraction, seed)
    tests = [b for b in decisive(battles) if b.prompt in held_out]
    # A score ≥ 0.5 favours model_a, as a router's score favours its strong model.
    guesses = np.random.default_rng(seed).random(len(tests)) >= 0.5
    accuracy = float(np.mean(guesses == np.array([b.winner == "model_a" for b in tests]))) if tests else float("nan")
    return Trained(
        Manifest(
            router="random",
            params={"seed": seed},
            training=TrainingRecord(
                hyperparameters={"seed": seed},
                metrics={"validation_accuracy": round(accuracy, 4), "validation_battles": len(tests)},
            ),
        )
    )


class _NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


def train_router(job: TrainJob) -> Trained:
    """``routellm-serve train random``: a seed, and nothing to learn."""
    job_options(_NoOptions, job)
    if job.weights is not None:
        raise ValueError("--weight: the random router learns nothing from its data")
    return train(job.battles, job.seed)
