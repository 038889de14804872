"""Matrix-factorisation router (RouteLLM paper, section 4.2).

δ(m, q) = w2ᵀ (v̂_m ⊙ W1 e_q), with v̂_m the L2-normalised embedding of model m and e_q the
prompt embedding; P(strong wins) = σ(δ(strong, q) − δ(weak, q)). Training uses that form; for
serving it collapses to one vector per model, u_m = W1ᵀ (w2 ⊙ v̂_m), so a score is one dot
product σ((u_strong − u_weak) · e_q) per prompt, batched as a matrix product. Any pair of the
checkpoint's models can be scored, and several pairs at once (one column of directions each).

A *refit* checkpoint (``params.form: direction``, written by the learner) holds that serving form
for its one pair directly, with a bias and a weight on the prompt's log length in characters:
σ(d · e_q + b + w · log(1 + |q|)).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from routing.routers.checkpoint import CheckpointError, load_manifest, load_tensors
from routing.routers.kind import ModelPair, PairsScorer, RouterSettings, ScoringPair
from routing.routers.pair import check_embeddings, scoring_pair


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


def load_model(directory: Path) -> MFModel:
    manifest = load_manifest(directory, "mf")
    assert manifest.embedding is not None
    model = MFModel(len(manifest.models), manifest.embedding.dim, manifest.params["hidden_dim"])
    model.load_state_dict(load_tensors(directory))
    return model.eval()


DIRECTION_FORM = "direction"


class MFRouter:
    def __init__(self, directory: Path, strong: str | None = None, weak: str | None = None) -> None:
        self.manifest = load_manifest(directory, "mf")
        self.pair = scoring_pair(self.manifest, strong, weak)
        self.bias = float(self.manifest.params.get("bias", 0.0))
        self.length_weight = float(self.manifest.params.get("length_weight", 0.0))
        self.model_vectors: np.ndarray | None = None  # a refit checkpoint holds its one pair's direction only
        if self.manifest.params.get("form") == DIRECTION_FORM:
            self.direction = load_tensors(directory)["direction"].numpy().astype(np.float32)
            return
        with torch.no_grad():
            self.model_vectors = load_model(directory).model_vectors().numpy().astype(np.float32)
        self.direction = self._directions([self.pair])[:, 0]

    def _directions(self, pairs: Sequence[ModelPair]) -> np.ndarray:
        """u_a − u_b for each pair (a, b), one column each."""
        assert self.model_vectors is not None
        index = {name: i for i, name in enumerate(self.manifest.models)}
        return np.stack([self.model_vectors[index[a]] - self.model_vectors[index[b]] for a, b in pairs], axis=1)

    def logits(self, prompts: list[str], embeddings: np.ndarray, directions: np.ndarray | None = None) -> np.ndarray:
        logits = embeddings.astype(np.float32) @ (self.direction if directions is None else directions) + self.bias
        if self.length_weight:
            lengths = log_length(prompts)
            logits += self.length_weight * (lengths if logits.ndim == 1 else lengths[:, None])
        return logits

    def score(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        embeddings = check_embeddings(embeddings, prompts, self.direction.shape[0], "mf")
        return 1.0 / (1.0 + np.exp(-self.logits(prompts, embeddings)))

    def against(self, pairs: Sequence[ModelPair]) -> PairsScorer:
        if self.model_vectors is None:
            if any(pair != self.pair for pair in pairs):
                raise CheckpointError(
                    f"this refit checkpoint scores only {self.pair[0]} against {self.pair[1]}; "
                    "route among more candidates with a checkpoint that holds every model's vector"
                )
            return _MFPairs(self, self.direction[:, None])
        return _MFPairs(self, self._directions([scoring_pair(self.manifest, a, b) for a, b in pairs]))


class _MFPairs:
    """An MF router's scores of several pairs: one matrix product for all of them."""

    def __init__(self, router: MFRouter, directions: np.ndarray) -> None:
        self.router, self.directions = router, directions

    def score(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        embeddings = check_embeddings(embeddings, prompts, self.directions.shape[0], "mf")
        return 1.0 / (1.0 + np.exp(-self.router.logits(prompts, embeddings, self.directions)))


def log_length(prompts: list[str]) -> np.ndarray:
    return np.log1p(np.array([len(p) for p in prompts], dtype=np.float32))


def router_for(directory: Path, config: RouterSettings, pair: ScoringPair) -> MFRouter:
    return MFRouter(directory, *pair)
