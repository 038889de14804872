"""The in-domain setting, cross-fitted: each router continues from its checkpoint on the
benchmark's own items, k-fold, and every item is scored by the fold that did not learn from it.

Items become strong-vs-weak outcomes by comparing the two models' quality on them (a higher
judge score or the only correct answer wins; equal quality is a tie), which is the paper's
golden-label augmentation applied to the benchmark itself. What each router learns:

- ``mf``: its scoring direction u_strong − u_weak, by the MF loss on the decisive items;
- ``bert``, ``causal_llm``: the three-way head on the checkpoint's features of the prompts;
- ``sw_ranking``: the items join its battles (it has no weights: its data is the model).

Items with the same prompt share a fold, so a repeated prompt never leaks across folds.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from routing.routers.classifier import LABELS
from routing.routers.sw_ranking import SWRankingRouter

STRONG_WINS, TIE, WEAK_WINS = range(len(LABELS))
FOLDS = 5

# Scores for the ``test`` rows of a router that learnt from the ``train`` rows.
FitAndScore = Callable[[np.ndarray, np.ndarray], np.ndarray]


def outcomes(strong_quality: np.ndarray, weak_quality: np.ndarray) -> np.ndarray:
    """Per item: an index into LABELS."""
    return np.where(strong_quality > weak_quality, STRONG_WINS, np.where(strong_quality < weak_quality, WEAK_WINS, TIE))


def folds_of(prompts: list[str], folds: int, seed: int) -> np.ndarray:
    """A fold number per item; equal prompts get the same one."""
    distinct = sorted(set(prompts))
    order = np.random.default_rng(seed).permutation(len(distinct))
    fold_of = {distinct[i]: position % folds for position, i in enumerate(order)}
    return np.array([fold_of[p] for p in prompts])


def cross_fit(prompts: list[str], fit_and_score: FitAndScore, folds: int = FOLDS, seed: int = 0) -> np.ndarray:
    assigned = folds_of(prompts, folds, seed)
    scores = np.empty(len(prompts))
    for fold in range(folds):
        train, test = np.flatnonzero(assigned != fold), np.flatnonzero(assigned == fold)
        scores[test] = fit_and_score(train, test)
    return scores


def _continue_training(
    initial: dict[str, torch.Tensor],
    loss: Callable[[dict[str, torch.Tensor], np.ndarray], torch.Tensor],
    rows: np.ndarray,
    seed: int,
    steps: int = 300,
    lr: float = 1e-3,
    anchor: float = 1e-3,
) -> dict[str, torch.Tensor]:
    """Full-batch Adam from the checkpoint's values, pulled back towards them by ``anchor``;
    the step with the lowest loss on a tenth of ``rows`` held out is kept."""
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(rows)
    held = max(1, len(rows) // 10)
    validation, train = shuffled[:held], shuffled[held:]
    params = {k: v.detach().clone().float().requires_grad_(True) for k, v in initial.items()}
    optimiser = torch.optim.Adam(params.values(), lr=lr)
    best = (float("inf"), {k: v.detach().clone() for k, v in params.items()})
    for _ in range(steps):
        with torch.no_grad():
            validation_loss = loss(params, validation).item()
        if validation_loss < best[0]:
            best = (validation_loss, {k: v.detach().clone() for k, v in params.items()})
        drift = sum(((params[k] - initial[k].float()) ** 2).sum() for k in params)
        total = loss(params, train) + anchor * drift
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
    return best[1]


def mf_fit_and_score(direction: np.ndarray, embeddings: np.ndarray, labels: np.ndarray, seed: int = 0) -> FitAndScore:
    """MF's score is σ((u_strong − u_weak) · e): only the direction matters for one pair."""
    x = torch.from_numpy(np.asarray(embeddings, dtype=np.float32))
    target = torch.from_numpy((labels == STRONG_WINS).astype(np.float32))
    decisive = labels != TIE

    def loss(params: dict[str, torch.Tensor], rows: np.ndarray) -> torch.Tensor:
        logits = x[rows] @ params["direction"]
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, target[rows])

    def fit_and_score(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        learnt = _continue_training({"direction": torch.from_numpy(direction)}, loss, train[decisive[train]], seed)
        with torch.no_grad():
            return torch.sigmoid(x[test] @ learnt["direction"]).numpy()

    return fit_and_score


def head_fit_and_score(head: torch.nn.Linear, features: np.ndarray, labels: np.ndarray, seed: int = 0) -> FitAndScore:
    x = torch.from_numpy(np.asarray(features, dtype=np.float32))
    target = torch.from_numpy(labels.astype(np.int64))
    initial = {"weight": head.weight.detach().float(), "bias": head.bias.detach().float()}

    def logits(params: dict[str, torch.Tensor], rows: np.ndarray) -> torch.Tensor:
        return x[rows] @ params["weight"].T + params["bias"]

    def loss(params: dict[str, torch.Tensor], rows: np.ndarray) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(logits(params, rows), target[rows])

    def fit_and_score(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        learnt = _continue_training(initial, loss, train, seed)
        with torch.no_grad():
            return torch.softmax(logits(learnt, test), dim=-1)[:, STRONG_WINS].numpy()

    return fit_and_score


def sw_ranking_fit_and_score(router: SWRankingRouter, embeddings: np.ndarray, labels: np.ndarray) -> FitAndScore:
    """Each training item is one battle of the strong model's tier against the weak one's,
    credited as the SW router credits any battle (two wins to the winner, one each for a tie)."""
    tiers = router.tier_count
    item_wins = np.zeros((len(labels), tiers, tiers))
    s, w = router.strong_tier, router.weak_tier
    item_wins[labels == STRONG_WINS, s, w] = 2
    item_wins[labels == WEAK_WINS, w, s] = 2
    item_wins[labels == TIE, s, w] = item_wins[labels == TIE, w, s] = 1

    def fit_and_score(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        augmented = router.with_battles(embeddings[train], item_wins[train])
        return augmented.score([""] * len(test), embeddings[test])

    return fit_and_score
