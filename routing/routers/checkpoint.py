"""A router checkpoint: a directory with ``manifest.json`` and (for trained routers) ``model.safetensors``.

The manifest says what the weights are and where they came from: router kind, the embedding
model they expect (for routers that score embeddings), the base model (for classifiers), the
models the router knows, its default scoring pair, the training data with hashes and licences,
the hyperparameters and the held-out metrics. It holds no timestamps, so retraining from the
same data gives the same manifest.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from safetensors.torch import load_file
from safetensors.torch import save as serialise

MANIFEST_FILE = "manifest.json"
WEIGHTS_FILE = "model.safetensors"


class CheckpointError(ValueError):
    """A checkpoint directory is missing, malformed, or of another router kind."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmbeddingSpec(_Strict):
    model_id: str
    dim: int = Field(ge=1)


class DataFile(_Strict):
    file: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    rows: int = Field(ge=0)
    weight: float = Field(default=1.0, gt=0, description="how much each of its battles counted in training")


class TrainingRecord(_Strict):
    data: list[DataFile] = Field(default_factory=list)
    data_licences: list[str] = Field(default_factory=list)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict, description="held-out figures, rounded to 4 digits")


class Manifest(_Strict):
    format: Literal["routellm-serve/checkpoint-v1"] = "routellm-serve/checkpoint-v1"
    router: str = Field(min_length=1, description="the router kind that reads it")
    embedding: EmbeddingSpec | None = None
    base_model: str | None = Field(default=None, description="classifiers: the model their weights adapt")
    models: list[str] = Field(default_factory=list, description="models the router can score")
    default_strong: str | None = None
    default_weak: str | None = None
    params: dict[str, Any] = Field(default_factory=dict, description="the router's own settings")
    training: TrainingRecord = Field(default_factory=TrainingRecord)


def data_record(path: Path, rows: int, weight: float = 1.0) -> DataFile:
    return DataFile(file=path.name, sha256=hashlib.sha256(path.read_bytes()).hexdigest(), rows=rows, weight=weight)


def weights_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    """``model.safetensors`` as :func:`save` writes it: the same tensors give the same bytes."""
    return serialise({k: v.detach().contiguous().cpu() for k, v in sorted(tensors.items())})


def save(directory: Path, manifest: Manifest, tensors: dict[str, torch.Tensor] | None = None) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if tensors:
        (directory / WEIGHTS_FILE).write_bytes(weights_bytes(tensors))
    (directory / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")


def scores_as(directory: Path, manifest: Manifest, tensors: dict[str, torch.Tensor]) -> bool:
    """Whether the checkpoint in ``directory`` scores as ``manifest`` and ``tensors`` would: the
    same kind, serving parameters, embedding or base model, and weights to the byte."""
    weights = directory / WEIGHTS_FILE
    try:
        old = load_manifest(directory)
    except CheckpointError:
        return False
    serving = ("router", "embedding", "base_model", "params")
    same_weights = weights.read_bytes() == weights_bytes(tensors) if weights.is_file() else not tensors
    return same_weights and all(getattr(old, field) == getattr(manifest, field) for field in serving)


def load_manifest(directory: Path, kind: str | None = None) -> Manifest:
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise CheckpointError(f"{directory}: not a router checkpoint (no {MANIFEST_FILE})")
    try:
        manifest = Manifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except ValueError as exc:
        raise CheckpointError(f"{path}: invalid manifest: {exc}") from None
    if kind is not None and manifest.router != kind:
        raise CheckpointError(f"{directory}: a '{manifest.router}' checkpoint, not '{kind}'")
    return manifest


def load_tensors(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(str(directory / WEIGHTS_FILE))
