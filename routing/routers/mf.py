"""Matrix-factorisation router (RouteLLM paper, section 4.2).

δ(m, q) = w2ᵀ (v̂_m ⊙ W1 e_q), with v̂_m the L2-normalised embedding of model m and e_q the
prompt embedding; P(strong wins) = σ(δ(strong, q) − δ(weak, q)). Training uses that form; for
serving it collapses to one vector per model, u_m = W1ᵀ (w2 ⊙ v̂_m), so a score is one dot
product σ((u_strong − u_weak) · e_q) per prompt, batched as a matrix product. Any pair of the
checkpoint's models can be scored, and several pairs at once (one column of directions each).

A checkpoint the learner writes for one pair holds one of its learned forms instead
(:mod:`routing.routers.learned_forms`: linear in the embedding and prompt features, or the
nearest labelled prompts' votes).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from routing.routers.checkpoint import CheckpointError, load_manifest, load_tensors
from routing.routers.kind import ModelPair, PairsScorer, RouterSettings, ScoringPair
from routing.routers.learned_forms import LinearForm, load_learned
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


class MFRouter:
    def __init__(self, directory: Path, strong: str | None = None, weak: str | None = None) -> None:
        self.manifest = load_manifest(directory, "mf")
        self.pair = scoring_pair(self.manifest, strong, weak)
        self.learned = load_learned(self.manifest, directory)
        self.model_vectors: np.ndarray | None = None  # a learned checkpoint scores its one pair only
        if self.learned is None:
            with torch.no_grad():
                self.model_vectors = load_model(directory).model_vectors().numpy().astype(np.float32)

    def _directions(self, pairs: Sequence[ModelPair]) -> np.ndarray:
        """u_a − u_b for each pair (a, b), one column each."""
        assert self.model_vectors is not None
        index = {name: i for i, name in enumerate(self.manifest.models)}
        return np.stack([self.model_vectors[index[a]] - self.model_vectors[index[b]] for a, b in pairs], axis=1)

    def linear(self) -> LinearForm | None:
        """Its score of its pair as a linear form (what a refit builds on); None for neighbours."""
        if self.learned is None:
            return LinearForm(self._directions([self.pair])[:, 0])
        return self.learned if isinstance(self.learned, LinearForm) else None

    @property
    def dim(self) -> int:
        return self.learned.dim if self.learned is not None else int(self.model_vectors.shape[1])  # type: ignore[union-attr]

    def score(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        embeddings = check_embeddings(embeddings, prompts, self.dim, "mf")
        if self.learned is not None:
            return self.learned.probabilities(prompts, embeddings)
        return self.against([self.pair]).score(prompts, embeddings)[:, 0]

    def against(self, pairs: Sequence[ModelPair]) -> PairsScorer:
        if self.learned is not None:
            if any(pair != self.pair for pair in pairs):
                raise CheckpointError(
                    f"this refit checkpoint scores only {self.pair[0]} against {self.pair[1]}; "
                    "route among more candidates with a checkpoint that holds every model's vector"
                )
            return _OnePair(self)
        return _MFPairs(self._directions([scoring_pair(self.manifest, a, b) for a, b in pairs]))


class _MFPairs:
    """A trained MF checkpoint's scores of several pairs: one matrix product for all of them."""

    def __init__(self, directions: np.ndarray) -> None:
        self.directions = directions

    def score(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        embeddings = check_embeddings(embeddings, prompts, self.directions.shape[0], "mf")
        return 1.0 / (1.0 + np.exp(-(embeddings.astype(np.float32) @ self.directions)))


class _OnePair:
    def __init__(self, router: MFRouter) -> None:
        self.router = router

    def score(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        return self.router.score(prompts, embeddings)[:, None]


def router_for(directory: Path, config: RouterSettings, pair: ScoringPair) -> MFRouter:
    return MFRouter(directory, *pair)
