"""Similarity-weighted (SW) ranking router (RouteLLM paper, section 4.1).

Models are grouped into tiers by their global Bradley–Terry rating over all training battles.
For a prompt q, every training battle is weighted by γ^(1 + cos(q, q′)/max cos), and the tiers'
Bradley–Terry ratings are refit on the weighted battles; P(strong wins) = σ(β_strong tier − β_weak tier).

The reference implementation refits a logistic regression over every battle for every request
(2.9 requests/s). Here the battles are summed per training prompt into tier-vs-tier win counts
once, so a request is one similarity product, one weighted sum of count matrices and a Newton
fit on a tiers × tiers system, for a whole batch of prompts at once. The fit is the same, and
one fit scores every pair of tiers, so several candidates cost what two do.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from routing.routers import bradley_terry
from routing.routers.checkpoint import Manifest, load_manifest, load_tensors
from routing.routers.kind import ModelPair, PairsScorer, RouterSettings, ScoringPair
from routing.routers.pair import check_embeddings, scoring_pair


class SWRankingRouter:
    def __init__(
        self,
        manifest: Manifest,
        prompt_embeddings: np.ndarray,
        tier_wins: np.ndarray,
        strong: str | None = None,
        weak: str | None = None,
    ) -> None:
        """``prompt_embeddings``: one row per training prompt; ``tier_wins[p, i, j]``: wins of tier i
        over tier j on prompt p."""
        self.manifest = manifest
        self.gamma = float(manifest.params["gamma"])
        strong, weak = scoring_pair(manifest, strong, weak)
        self.strong_tier, self.weak_tier = self._tiers(strong, weak)
        self.prompt_embeddings = np.asarray(prompt_embeddings, dtype=np.float32)
        self.tier_count = tier_wins.shape[-1]
        self._wins = np.asarray(tier_wins, dtype=np.float64).reshape(len(tier_wins), -1)

    @classmethod
    def load(cls, directory: Path, strong: str | None = None, weak: str | None = None) -> SWRankingRouter:
        tensors = load_tensors(directory)
        return cls(
            load_manifest(directory, "sw_ranking"),
            tensors["prompt_embeddings"].float().numpy(),
            tensors["tier_wins"].double().numpy(),
            strong,
            weak,
        )

    def with_battles(self, prompt_embeddings: np.ndarray, tier_wins: np.ndarray) -> SWRankingRouter:
        """This router with more training prompts, ``tier_wins`` shaped as in the constructor."""
        augmented = copy.copy(self)
        augmented.prompt_embeddings = np.concatenate([self.prompt_embeddings, prompt_embeddings.astype(np.float32)])
        augmented._wins = np.concatenate([self._wins, tier_wins.reshape(len(tier_wins), -1)])
        return augmented

    def tier_ratings(self, embeddings: np.ndarray, chunk: int = 1024) -> np.ndarray:
        """Bradley–Terry ratings of every tier, refit for each prompt embedding (one row each)."""
        if len(embeddings) > chunk:  # bounds the prompts × training-prompts similarity matrix
            return np.concatenate(
                [self.tier_ratings(embeddings[i : i + chunk]) for i in range(0, len(embeddings), chunk)]
            )
        similarity = embeddings.astype(np.float32) @ self.prompt_embeddings.T
        closest = np.maximum(similarity.max(axis=1, keepdims=True), 1e-6)
        weights = self.gamma ** (1.0 + similarity.astype(np.float64) / closest)
        wins = (weights @ self._wins).reshape(len(embeddings), self.tier_count, self.tier_count)
        return bradley_terry.fit(wins)

    def _tiers(self, *models: str) -> tuple[int, ...]:
        tier_of = self.manifest.params["tiers"]
        return tuple(tier_of[model] for model in models)

    def score(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        return self._score_tiers(prompts, embeddings, [(self.strong_tier, self.weak_tier)])[:, 0]

    def against(self, pairs: Sequence[ModelPair]) -> PairsScorer:
        tiers = [self._tiers(*scoring_pair(self.manifest, a, b)) for a, b in pairs]
        return _SWPairs(self, tiers)

    def _score_tiers(
        self, prompts: list[str], embeddings: np.ndarray | None, tiers: Sequence[tuple[int, ...]]
    ) -> np.ndarray:
        embeddings = check_embeddings(embeddings, prompts, self.prompt_embeddings.shape[1], "sw_ranking")
        if len(prompts) == 0:
            return np.zeros((0, len(tiers)))
        ratings = self.tier_ratings(embeddings)
        first, second = (list(column) for column in zip(*tiers, strict=True))
        return 1.0 / (1.0 + np.exp(-(ratings[:, first] - ratings[:, second])))


class _SWPairs:
    """An SW ranking router's scores of several pairs, from one refit of the tiers per prompt."""

    def __init__(self, router: SWRankingRouter, tiers: list[tuple[int, ...]]) -> None:
        self.router, self.tiers = router, tiers

    def score(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        return self.router._score_tiers(prompts, embeddings, self.tiers)


def router_for(directory: Path, config: RouterSettings, pair: ScoringPair) -> SWRankingRouter:
    return SWRankingRouter.load(directory, *pair)
