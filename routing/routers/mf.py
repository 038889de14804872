"""Matrix-factorisation router (RouteLLM paper, section 4.2).

δ(m, q) = w2ᵀ (v̂_m ⊙ W1 e_q), with v̂_m the L2-normalised embedding of model m and e_q the
prompt embedding; P(strong wins) = σ(δ(strong, q) − δ(weak, q)). Training uses that form; for
serving it collapses to one vector per model, u_m = W1ᵀ (w2 ⊙ v̂_m), so a score is one dot
product σ((u_strong − u_weak) · e_q) per prompt, batched as a matrix product.

A checkpoint is a directory with ``model.safetensors`` and ``meta.json`` (:class:`MFCheckpointMeta`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from safetensors.torch import load_file, save_file
from torch import nn

from routing.config import MFRouterConfig
from routing.resources import checkpoint_path

META_FILE = "meta.json"
WEIGHTS_FILE = "model.safetensors"


class MFCheckpointMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: str = Field(default="mf-v1", pattern=r"^mf-v1$")
    model_names: list[str] = Field(min_length=2)
    embedding_model_id: str
    embedding_dim: int = Field(ge=1)
    hidden_dim: int = Field(ge=1)
    default_strong: str
    default_weak: str
    training: dict[str, Any] = Field(default_factory=dict, description="data, hyperparameters and metrics")


class MFModel(nn.Module):
    def __init__(self, num_models: int, embedding_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.model_embeddings = nn.Embedding(num_models, hidden_dim)
        self.projection = nn.Linear(embedding_dim, hidden_dim, bias=False)
        self.head = nn.Linear(hidden_dim, 1, bias=False)

    def forward(self, model_ids: torch.Tensor, prompt_embeddings: torch.Tensor) -> torch.Tensor:
        """δ(m, q) for each (model id, prompt embedding) row."""
        models = nn.functional.normalize(self.model_embeddings(model_ids), dim=-1)
        return self.head(models * self.projection(prompt_embeddings)).squeeze(-1)

    def model_vectors(self) -> torch.Tensor:
        """u_m for every model: the collapsed per-model scoring vector in prompt-embedding space."""
        models = nn.functional.normalize(self.model_embeddings.weight, dim=-1)
        return (models * self.head.weight) @ self.projection.weight


def save_checkpoint(model: MFModel, meta: MFCheckpointMeta, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(directory / WEIGHTS_FILE))
    (directory / META_FILE).write_text(meta.model_dump_json(indent=2) + "\n")


def load_meta(directory: Path) -> MFCheckpointMeta:
    return MFCheckpointMeta.model_validate(json.loads((directory / META_FILE).read_text()))


def load_checkpoint(directory: Path) -> tuple[MFModel, MFCheckpointMeta]:
    meta = load_meta(directory)
    model = MFModel(len(meta.model_names), meta.embedding_dim, meta.hidden_dim)
    model.load_state_dict(load_file(str(directory / WEIGHTS_FILE)))
    return model.eval(), meta


def scoring_pair(config: MFRouterConfig, meta: MFCheckpointMeta) -> tuple[str, str]:
    strong = config.strong_model_id or meta.default_strong
    weak = config.weak_model_id or meta.default_weak
    for role, name in (("strong_model_id", strong), ("weak_model_id", weak)):
        if name not in meta.model_names:
            raise ValueError(f"{role} '{name}' is not in the checkpoint's models: {', '.join(meta.model_names)}")
    return strong, weak


class MFRouter:
    def __init__(self, config: MFRouterConfig) -> None:
        model, self.meta = load_checkpoint(checkpoint_path(config.checkpoint))
        strong, weak = scoring_pair(config, self.meta)
        with torch.no_grad():
            vectors = model.model_vectors().numpy()
        index = {name: i for i, name in enumerate(self.meta.model_names)}
        self._direction = (vectors[index[strong]] - vectors[index[weak]]).astype(np.float32)

    def score(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        if embeddings is None or embeddings.shape != (len(prompts), self._direction.shape[0]):
            got = None if embeddings is None else embeddings.shape
            raise ValueError(f"mf router needs {len(prompts)}×{self._direction.shape[0]} embeddings, got {got}")
        logits = embeddings.astype(np.float32) @ self._direction
        return 1.0 / (1.0 + np.exp(-logits))
