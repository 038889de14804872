"""What every router's training shares: the job a trainer is given, the held-out prompt split
and the data record."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch
from pydantic import BaseModel, Field, ValidationError

from routing.config import LocalEmbedding
from routing.embeddings.local import LocalEmbedder
from routing.offline.data.outcomes import OutcomeTable
from routing.offline.data.schema import Battle
from routing.resources import DEFAULT_STRONG, DEFAULT_WEAK
from routing.routers.checkpoint import Manifest

Log = Callable[[str], None]
Embed = Callable[[list[str]], np.ndarray]
Options = TypeVar("Options", bound=BaseModel)


@dataclass(frozen=True)
class TrainJob:
    """What a router kind's trainer is given: the battles, each one's weight (None: all 1), the
    seed, the kind's own options by name (``epochs``, ``strong``, ...) and where to log; and the
    same data as many-model outcome tables, one per source, each with its weight. ``embed``,
    when given, encodes prompts instead of the encoder the options name (validation passes one
    that remembers every prompt it has encoded)."""

    kind: str
    battles: list[Battle]
    weights: list[float] | None
    seed: int
    options: Mapping[str, Any]
    log: Log
    tables: list[OutcomeTable] = field(default_factory=list)
    table_weights: list[float] = field(default_factory=list)
    embed: Embed | None = None


class PairOptions(BaseModel):
    """The options of trainers of routers over embeddings that score any two models they know."""

    strong: str = Field(default=DEFAULT_STRONG, description="default strong model of the scoring pair")
    weak: str = Field(default=DEFAULT_WEAK, description="default weak model of the scoring pair")
    embedding_model: str | None = Field(default=None, description="local directory or hub id; default: MiniLM")


def train_pair_router(job: TrainJob, options_model: type[PairOptions], fit: Callable[..., Trained]) -> Trained:
    """Trains a router over embeddings that scores any two models: ``fit(battles, embed, *,
    config, weights, embedding_model_id, default_strong, default_weak, log)`` with the job's
    options as ``options_model`` (its config, and the default pair and embedding model)."""
    options = job_options(options_model, job, seed=job.seed)
    embedding = LocalEmbedding(model_path=options.embedding_model)
    return fit(
        job.battles,
        job.embed or LocalEmbedder(embedding).encode,
        config=options,
        weights=job.weights,
        embedding_model_id=embedding.model_id,
        default_strong=options.strong,
        default_weak=options.weak,
        log=job.log,
    )


def job_options(model: type[Options], job: TrainJob, **fixed: Any) -> Options:
    """The job's options as the trainer's ``model`` (with ``fixed`` fields set); an option it does
    not take, or a bad value, is named as the command line spells it (``--batch-size``)."""
    try:
        return model.model_validate({**job.options, **fixed})
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            flag = "--" + str(error["loc"][0]).replace("_", "-") if error["loc"] else "options"
            if error["type"] == "extra_forbidden":
                problems.append(f"{flag}: the {job.kind} trainer takes no such option")
            else:
                problems.append(f"{flag}: {error['msg'].removeprefix('Value error, ')}")
        raise ValueError("; ".join(problems)) from None


@dataclass
class Trained:
    """A trained router, ready for :func:`routing.routers.checkpoint.save`."""

    manifest: Manifest
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)


def held_out_prompts(prompts: Sequence[str], fraction: float, seed: int) -> set[str]:
    """A seeded random share of the distinct prompts, held out for validation: no held-out prompt
    is trained on, so held-out figures measure generalisation to unseen prompts."""
    distinct = sorted(set(prompts))
    order = np.random.default_rng(seed).permutation(len(distinct))
    return {distinct[i] for i in order[: int(round(fraction * len(distinct)))]}


def is_decisive(battle: Battle) -> bool:
    return battle.winner in ("model_a", "model_b") and battle.model_a != battle.model_b


def decisive(battles: Sequence[Battle]) -> list[Battle]:
    return [b for b in battles if is_decisive(b)]


def weights_of(battles: Sequence[Battle], weights: Sequence[float] | None) -> list[float]:
    """Each battle's weight in the loss (its source's ``--weight``); 1 when none is given."""
    if weights is None:
        return [1.0] * len(battles)
    if len(weights) != len(battles):
        raise ValueError(f"{len(weights)} weights for {len(battles)} battles")
    return [float(w) for w in weights]


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
