"""A router of any registered kind trained on ``--data`` references and saved as a checkpoint
that records the data it learnt from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from routing.calibration import calibration_files
from routing.offline.training.common import Log, Trained, TrainJob
from routing.offline.training.data import read_training_data
from routing.routers.checkpoint import Manifest, TrainingRecord, save, scores_as
from routing.routers.kind import resolve
from routing.routers.kinds import KINDS


def train_checkpoint(
    kind: str,
    out: Path,
    data: Sequence[str],
    weights: Mapping[str, float],
    seed: int,
    options: Mapping[str, Any],
    log: Log,
) -> Manifest:
    """Trains a ``kind`` router on the battles of ``data`` (each reference weighted by
    ``weights``, default 1) with the kind's own ``options``, and saves it in ``out``."""
    router_kind = KINDS.get(kind)
    if router_kind.trainer is None:
        raise ValueError(f"router kind '{kind}' has no trainer")
    read = read_training_data(list(data), dict(weights), log)
    job = TrainJob(kind, read.battles, read.weights, seed, dict(options), log, read.tables, read.table_weights)
    trained: Trained = resolve(router_kind.trainer)(job)
    record = trained.manifest.training
    manifest = trained.manifest.model_copy(
        update={
            "training": TrainingRecord(**{**record.model_dump(), "data": read.files, "data_licences": read.licences})
        }
    )
    # Tables left by the checkpoint this one replaces hold thresholds for other scores.
    tables = calibration_files(out)
    stale = bool(tables) and not scores_as(out, manifest, trained.tensors)
    save(out, manifest, trained.tensors)
    if stale:
        for calibration in tables:
            calibration.unlink()
            log(
                f"removed {calibration}: its thresholds were measured on the replaced checkpoint's scores; "
                f"run 'routellm-serve calibrate --router {kind}={out} --save'"
            )
    return manifest
