"""``routellm-serve train <kind>``: train a router of any registered kind and save its checkpoint."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from routing.commands import Echo, to_stderr
from routing.resources import DEFAULT_TRAIN_DATA
from routing.routers.checkpoint import Manifest, TrainingRecord, save
from routing.routers.kind import resolve
from routing.routers.kinds import KINDS
from routing.training.common import Log, Trained, TrainJob
from routing.training.data import read_training_data


def train(
    kind: str,
    out: Path,
    data: Sequence[str] = (str(DEFAULT_TRAIN_DATA),),
    weights: Mapping[str, float] | None = None,
    seed: int = 42,
    options: Mapping[str, Any] | None = None,
    echo: Echo = print,
    log: Log = to_stderr,
) -> Manifest:
    """Trains a ``kind`` router on the battles of ``data`` (each reference weighted by ``weights``,
    default 1) with the kind's own ``options`` (e.g. ``epochs``), and saves it in ``out``."""
    router_kind = KINDS.get(kind)
    if router_kind.trainer is None:
        raise ValueError(f"router kind '{kind}' has no trainer")
    started = time.perf_counter()
    read = read_training_data(list(data), dict(weights or {}), log)
    job = TrainJob(kind, read.battles, read.weights, seed, dict(options or {}), log)
    trained: Trained = resolve(router_kind.trainer)(job)
    record = trained.manifest.training
    manifest = trained.manifest.model_copy(
        update={
            "training": TrainingRecord(**{**record.model_dump(), "data": read.files, "data_licences": read.licences})
        }
    )
    save(out, manifest, trained.tensors)
    metrics = ", ".join(f"{k} {v}" for k, v in manifest.training.metrics.items())
    echo(f"saved {out} ({kind}) in {time.perf_counter() - started:.0f} s: {metrics}")
    return manifest
