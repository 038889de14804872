"""The in-domain setting, cross-fitted: each router learns from the benchmark's own items,
k-fold, and every item is scored by the fold that did not learn from it.

Items become strong-vs-weak outcomes by comparing the two models' quality on them (a higher
judge score or the only correct answer wins; equal quality is a tie), which is the paper's
golden-label augmentation applied to the benchmark itself. Each router keeps its checkpoint's
representation of a prompt and refits what reads it:

- ``mf``: its scoring direction u_strong − u_weak over the prompt embedding, on the decisive items;
- ``bert``, ``causal_llm``: the three-way head over the checkpoint's features of the prompt;
- ``sw_ranking``: the items join its battles (it has no weights: its data is the model);
- ``ensemble``: one logistic head over what its heads read, the embedding and the prompt features.

A refit is a logistic regression whose L2 strength is chosen by cross-validation inside the
training folds, so nothing about the scored fold enters it.

Items with the same prompt share a fold, so a repeated prompt never leaks across folds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from routing.features import prompt_features
from routing.routers.classifier import LABELS, ClassifierRouter, head_probabilities
from routing.routers.ensemble import EnsembleRouter
from routing.routers.kind import Router
from routing.routers.sw_ranking import SWRankingRouter

STRONG_WINS, TIE, WEAK_WINS = range(len(LABELS))
FOLDS = 5

REGULARISATION_GRID = np.logspace(-5, 0, 6)  # inverse L2 strengths C tried by the inner cross-validation
INNER_FOLDS = 3

# Scores for the ``test`` rows of a router that learnt from the ``train`` rows.
FitAndScore = Callable[[np.ndarray, np.ndarray], np.ndarray]
# A kind's in-domain setting: its checkpoint's scores of the items, and its refit.
Setting = tuple[np.ndarray, FitAndScore]


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


def fit_logistic(features: np.ndarray, target: np.ndarray) -> Any:
    """An L2-regularised logistic regression (after standard scaling) of ``target`` on
    ``features``, its strength chosen by an inner cross-validation of the log loss."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(
        StandardScaler(),
        LogisticRegressionCV(
            Cs=REGULARISATION_GRID,
            l1_ratios=(0.0,),
            cv=INNER_FOLDS,
            scoring="neg_log_loss",
            max_iter=2000,
            use_legacy_attributes=False,
        ),
    )
    return model.fit(features, target)


def _refit_linear(
    features: np.ndarray, target: np.ndarray, rows: np.ndarray, test: np.ndarray, positive: int
) -> np.ndarray:
    """P(target == positive) for ``test`` from :func:`fit_logistic` on ``rows`` alone. A class
    with fewer examples than inner folds cannot be validated and is left out; with one class
    left there is nothing to rank by, and every test item gets the same score."""
    counts = np.bincount(target[rows], minlength=len(LABELS))
    rows = rows[counts[target[rows]] >= INNER_FOLDS]
    if len(np.unique(target[rows])) < 2:
        return np.full(len(test), 0.5)
    model = fit_logistic(features[rows], target[rows])
    classes = list(model[-1].classes_)
    if positive not in classes:
        return np.zeros(len(test))
    return model.predict_proba(features[test])[:, classes.index(positive)]


def mf_fit_and_score(embeddings: np.ndarray, labels: np.ndarray) -> FitAndScore:
    """MF's score is σ((u_strong − u_weak) · e), a linear function of the prompt embedding. The
    direction is refit on the decisive items, as MF trains on decisive battles; where the weak
    model (or the strong one) never wins in the training folds, on strong wins against the rest."""
    strong_won = (labels == STRONG_WINS).astype(np.int64)
    decisive = labels != TIE

    def fit_and_score(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        rows = train[decisive[train]]
        if np.bincount(strong_won[rows], minlength=2).min() < INNER_FOLDS:
            rows = train
        return _refit_linear(embeddings, strong_won, rows, test, positive=1)

    return fit_and_score


def head_fit_and_score(features: np.ndarray, labels: np.ndarray) -> FitAndScore:
    """The classifiers' three-way head, refit on the checkpoint's features of the prompts."""

    def fit_and_score(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        return _refit_linear(features, labels, train, test, positive=STRONG_WINS)

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


def mf_setting(router: Router, prompts: list[str], embeddings: np.ndarray | None, labels: np.ndarray) -> Setting:
    assert embeddings is not None
    return np.asarray(router.score(prompts, embeddings)), mf_fit_and_score(embeddings, labels)


def sw_ranking_setting(
    router: SWRankingRouter, prompts: list[str], embeddings: np.ndarray | None, labels: np.ndarray
) -> Setting:
    assert embeddings is not None
    return np.asarray(router.score(prompts, embeddings)), sw_ranking_fit_and_score(router, embeddings, labels)


def classifier_setting(
    router: ClassifierRouter, prompts: list[str], embeddings: np.ndarray | None, labels: np.ndarray
) -> Setting:
    """The head reads the checkpoint's features once, for its scores and for every refit."""
    features = router.features(prompts)
    out = head_probabilities(router.model.head, features)[:, STRONG_WINS]
    return out, head_fit_and_score(features, labels)


def ensemble_setting(
    router: EnsembleRouter, prompts: list[str], embeddings: np.ndarray | None, labels: np.ndarray
) -> Setting:
    assert embeddings is not None
    features = np.hstack([embeddings, prompt_features(prompts, router.features)])
    return np.asarray(router.score(prompts, embeddings)), mf_fit_and_score(features, labels)
