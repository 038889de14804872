"""Ensemble router: heads that predict how hard a prompt is, one per training source, and the
prompt's length.

Each head is a ridge regression, learnt on one source, of a prompt's *difficulty* there: one
minus the mean outcome of every model that source graded on it, z-scored within the source.
Many-model outcomes say more about a prompt than one pair's battle does, and a head per source
keeps each source's notion of hard intact instead of averaging domains into one fit. A head reads
the prompt embedding and the features of :mod:`routing.features`.

The score is σ((mean over heads of the head's z-scored prediction + λ · z(log length)) / (1 + λ)),
each z-score taken with the statistics of the training prompts, so a score of ½ is a prompt of
average difficulty and length for the training data; dividing by 1 + λ keeps the logit on the
scale of one z-score, so thresholds stay readable whatever λ is. The same score serves any pair of models:
what it ranks is how much a prompt needs a stronger model, not which of two models wins.

Serving is one matrix product: heads' coefficients are stored in the raw feature space.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from routing.features import prompt_features
from routing.routers.checkpoint import CheckpointError, load_manifest, load_tensors
from routing.routers.kind import RouterSettings, ScoringPair
from routing.routers.pair import check_embeddings

TENSORS = ("coefficients", "intercepts", "head_mean", "head_std", "head_weights")


class EnsembleRouter:
    def __init__(self, directory: Path) -> None:
        self.manifest = load_manifest(directory, "ensemble")
        if self.manifest.embedding is None:
            raise CheckpointError(f"{directory}: an ensemble checkpoint names its embedding model")
        tensors = load_tensors(directory)
        missing = [name for name in TENSORS if name not in tensors]
        if missing:
            raise CheckpointError(f"{directory}: missing tensor(s) {', '.join(missing)}")
        arrays = {name: tensors[name].numpy().astype(np.float64) for name in TENSORS}
        self.coefficients = arrays["coefficients"]  # (heads, embedding dim + features)
        self.intercepts = arrays["intercepts"]
        self.head_mean, self.head_std = arrays["head_mean"], arrays["head_std"]
        self.head_weights = arrays["head_weights"] / arrays["head_weights"].sum()
        params = self.manifest.params
        self.features: tuple[str, ...] = tuple(params["features"])
        self.length_weight = float(params["length_weight"])
        self.length_mean, self.length_std = float(params["length_mean"]), float(params["length_std"])
        self.embedding_dim = self.manifest.embedding.dim

    def logits(self, prompts: list[str], embeddings: np.ndarray) -> np.ndarray:
        x = np.hstack([embeddings.astype(np.float64), prompt_features(prompts, self.features)])
        heads = (x @ self.coefficients.T + self.intercepts - self.head_mean) / self.head_std
        length = (np.log1p([len(p) for p in prompts]) - self.length_mean) / self.length_std
        return (heads @ self.head_weights + self.length_weight * length) / (1.0 + self.length_weight)

    def score(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        embeddings = check_embeddings(embeddings, prompts, self.embedding_dim, "ensemble")
        return 1.0 / (1.0 + np.exp(-self.logits(prompts, embeddings)))


def router_for(directory: Path, config: RouterSettings, pair: ScoringPair) -> EnsembleRouter:
    return EnsembleRouter(directory)
