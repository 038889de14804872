"""The forms of a checkpoint the learner writes for one pair (``params.form``), served as ``mf``.

- ``direction``: a linear model, P(strong better) = σ(d · e_q + b + Σ_k w_k f_k(q)), over the
  prompt embedding e_q and named prompt features (:mod:`routing.features`); a checkpoint of an
  older learner names only ``length_weight``, the weight of the log length in characters.
- ``neighbours``: the labelled prompts nearest the prompt (cosine of the embeddings) vote,
  P(strong better) = (Σ_{k nearest} y + s · prior) / (k + s), so a region with few votes leans on
  the base rate ``prior`` of the labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from routing.features import prompt_features
from routing.routers.checkpoint import CheckpointError, Manifest, load_tensors

LINEAR_FORM = "direction"
NEIGHBOURS_FORM = "neighbours"
LEARNED_FORMS = (LINEAR_FORM, NEIGHBOURS_FORM)


@dataclass(frozen=True)
class LinearForm:
    direction: np.ndarray
    bias: float = 0.0
    feature_weights: Mapping[str, float] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.direction.shape[0])

    def logits(self, prompts: list[str], embeddings: np.ndarray) -> np.ndarray:
        logits = embeddings.astype(np.float32) @ self.direction.astype(np.float32) + np.float32(self.bias)
        if self.feature_weights:
            names = tuple(self.feature_weights)
            weights = np.array([self.feature_weights[n] for n in names], dtype=np.float32)
            logits = logits + prompt_features(prompts, names) @ weights
        return logits

    def probabilities(self, prompts: list[str], embeddings: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logits(prompts, embeddings)))

    def params(self) -> dict:
        return {"form": LINEAR_FORM, "bias": self.bias, "feature_weights": dict(self.feature_weights)}

    def tensors(self) -> dict[str, np.ndarray]:
        return {"direction": self.direction.astype(np.float32)}


@dataclass(frozen=True)
class NeighboursForm:
    embeddings: np.ndarray  # the labelled prompts', L2-normalised, one row each
    targets: np.ndarray  # 1 where the strong answer was better, else 0
    k: int
    prior: float
    strength: float = 1.0

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def probabilities(self, prompts: list[str], embeddings: np.ndarray) -> np.ndarray:
        return self.votes(unit_rows(embeddings) @ self.embeddings.T)

    def votes(self, similarity: np.ndarray) -> np.ndarray:
        """P(strong better) from each row's similarities to the labelled prompts."""
        k = min(self.k, similarity.shape[1])
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        hits = self.targets[nearest].sum(axis=1)
        return (hits + self.strength * self.prior) / (k + self.strength)

    def params(self) -> dict:
        return {"form": NEIGHBOURS_FORM, "k": self.k, "prior": self.prior, "strength": self.strength}

    def tensors(self) -> dict[str, np.ndarray]:
        return {"embeddings": self.embeddings.astype(np.float32), "targets": self.targets.astype(np.float32)}


LearnedForm = LinearForm | NeighboursForm


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    matrix = matrix.astype(np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


def load_learned(manifest: Manifest, directory: Path) -> LearnedForm | None:
    """The checkpoint's learned form; None for a trained checkpoint (no ``params.form``)."""
    params = manifest.params
    form = params.get("form")
    if form is None:
        return None
    tensors = {name: tensor.numpy() for name, tensor in load_tensors(directory).items()}
    if form == LINEAR_FORM:
        weights = dict(params.get("feature_weights") or {})
        if params.get("length_weight"):
            weights["log_chars"] = weights.get("log_chars", 0.0) + float(params["length_weight"])
        return LinearForm(tensors["direction"].astype(np.float32), float(params.get("bias", 0.0)), weights)
    if form == NEIGHBOURS_FORM:
        return NeighboursForm(
            tensors["embeddings"],
            tensors["targets"],
            int(params["k"]),
            float(params["prior"]),
            float(params["strength"]),
        )
    raise CheckpointError(f"{directory}: params.form '{form}' is none of {', '.join(LEARNED_FORMS)}")
