"""The learner's challenger families, each fit on the own labels as a learned form
(:mod:`routing.routers.learned_forms`), and their cross-validated APGR on those labels.

What is learned is whether the most capable candidate's answer is *better*: a tie (the cheaper
answer was as good) is a label like any other, and the commonest one.

- ``length``: the prompt's log length alone; a legitimate router (it carries MMLU) and the
  baseline every other family must beat;
- ``linear``: an L2-regularised logistic regression on the embedding and the prompt features;
- ``neighbours``: the labelled prompts nearest in the embedding vote, k chosen by leave-one-out;
- ``champion``: the serving router, corrected: the same regression with the champion's own logit
  as a feature, so with few or noisy labels it leans on what the champion knows (only where the
  champion's score is linear in those inputs, so that the correction folds into one form, and
  where the champion was not fit on these labels: its logit on them would be in-sample).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from routing.features import FEATURE_NAMES, prompt_features
from routing.learner_config import FAMILIES
from routing.offline.evaluation.in_domain import INNER_FOLDS, fit_logistic
from routing.offline.evaluation.metrics import apgr, router_curve
from routing.routers.learned_forms import LearnedForm, LinearForm, NeighboursForm, unit_rows

NEIGHBOUR_COUNTS = (5, 10, 20, 40)
TRAINED_ON = "trained_on.json"  # in a refit checkpoint: the prompts its form was fit on
# Each outer fold's training part must hold INNER_FOLDS of each outcome for the regression's own
# cross-validation of its strength.
MIN_EACH_OUTCOME = 2 * INNER_FOLDS
CV_REPEATS = 3


@dataclass(frozen=True)
class Labelled:
    """Labelled prompts, what the families read of them, and the quality of each answer."""

    prompts: list[str]
    embeddings: np.ndarray
    strong_quality: np.ndarray
    weak_quality: np.ndarray

    @property
    def strong_better(self) -> np.ndarray:
        return (self.strong_quality > self.weak_quality).astype(np.int64)

    def rows(self, index: np.ndarray) -> Labelled:
        return Labelled(
            [self.prompts[i] for i in index],
            self.embeddings[index],
            self.strong_quality[index],
            self.weak_quality[index],
        )

    def apgr(self, scores: np.ndarray) -> float | None:
        return apgr_of(scores, self.strong_quality, self.weak_quality)


def apgr_of(scores: np.ndarray, strong_q: np.ndarray, weak_q: np.ndarray) -> float | None:
    strong, weak = float(np.mean(strong_q)), float(np.mean(weak_q))
    if strong <= weak:  # no gap to recover: APGR measures nothing here
        return None
    curve, _ = router_curve(scores, strong_q, weak_q)
    return float(apgr(curve, weak, strong))


Fit = Callable[[Labelled], LearnedForm]


def prompt_key(prompt: str) -> str:
    return hashlib.sha256(prompt.encode()).hexdigest()[:16]


def write_trained_on(checkpoint: Path, data: Labelled) -> None:
    (checkpoint / TRAINED_ON).write_text(json.dumps(sorted({prompt_key(p) for p in data.prompts})) + "\n")


def trained_on(checkpoint: str | Path) -> frozenset[str]:
    """The prompts a refit checkpoint was fit on (none known for any other checkpoint)."""
    path = Path(checkpoint) / TRAINED_ON
    return frozenset(json.loads(path.read_text())) if path.is_file() else frozenset()


def fit_length(data: Labelled) -> LearnedForm:
    weights, bias = _logistic(prompt_features(data.prompts, ("log_chars",)), data.strong_better)
    return LinearForm(np.zeros(data.embeddings.shape[1], np.float32), bias, {"log_chars": float(weights[0])})


def fit_linear(data: Labelled) -> LearnedForm:
    features = prompt_features(data.prompts)
    weights, bias = _logistic(np.column_stack([data.embeddings, features]), data.strong_better)
    dim = data.embeddings.shape[1]
    return LinearForm(weights[:dim].astype(np.float32), bias, _named(weights[dim:]))


def champion_fit(champion: LinearForm) -> Fit:
    """The ``champion`` family: its correction by the labels, folded into one linear form."""

    def fit(data: Labelled) -> LearnedForm:
        own = champion.logits(data.prompts, data.embeddings)
        features = prompt_features(data.prompts)
        weights, bias = _logistic(np.column_stack([data.embeddings, features, own]), data.strong_better)
        dim, on_champion = data.embeddings.shape[1], float(weights[-1])
        # The champion's logit is d_c · e + b_c + Σ w_c,k f_k: its weight folds into all three.
        folded = _named(weights[dim:-1])
        for name, weight in champion.feature_weights.items():
            folded[name] = folded.get(name, 0.0) + on_champion * weight
        direction = weights[:dim] + on_champion * champion.direction.astype(np.float64)
        return LinearForm(direction.astype(np.float32), bias + on_champion * champion.bias, folded)

    return fit


def fit_neighbours(data: Labelled) -> LearnedForm:
    """k by the log loss of each labelled prompt's vote by the others (leave-one-out)."""
    units, target = unit_rows(data.embeddings), data.strong_better
    prior = float(target.mean())
    similarity = units @ units.T
    np.fill_diagonal(similarity, -np.inf)
    best: tuple[float, int] | None = None
    for k in [k for k in NEIGHBOUR_COUNTS if k < len(target)] or [1]:
        votes = NeighboursForm(units, target, k, prior).votes(similarity)
        votes = np.clip(votes, 1e-6, 1 - 1e-6)
        loss = float(-np.mean(target * np.log(votes) + (1 - target) * np.log(1 - votes)))
        if best is None or loss < best[0]:
            best = (loss, k)
    assert best is not None
    return NeighboursForm(units, target.astype(np.float32), best[1], prior)


def _named(weights: np.ndarray) -> dict[str, float]:
    return {name: float(w) for name, w in zip(FEATURE_NAMES, weights, strict=True)}


def _logistic(features: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float]:
    """The weights and bias of :func:`fit_logistic`, on the unscaled features."""
    model = fit_logistic(features.astype(np.float64), target)
    scaler, regression = model[0], model[-1]
    weights = regression.coef_[0] / scaler.scale_
    return weights, float(regression.intercept_[0] - weights @ scaler.mean_)


@dataclass(frozen=True)
class HeldOut:
    """A held-out fold of the training labels and a family's probabilities on it, from a fit on
    the other folds."""

    rows: np.ndarray
    probabilities: np.ndarray


@dataclass(frozen=True)
class CrossValidated:
    family: str
    apgr: float | None  # the mean over held-out folds
    held_out: tuple[HeldOut, ...] = ()  # the first split's folds: every label scored once


def cross_validate(
    fits: dict[str, Fit], data: Labelled, folds: int, seed: int, repeats: int = CV_REPEATS
) -> list[CrossValidated]:
    """Each family's APGR on the training labels: the mean over ``repeats`` stratified splits in
    ``folds`` of the APGR on each held-out fold of a fit on the others. Per fold, not pooled: each
    fold's fit has its own offset, and pooling their scores would rank across fits, which blurs
    a weak but steady signal (length's) more than a strong one. The first split's held-out
    probabilities are kept: evidence for the promotion rule on labels the fits never saw."""
    from sklearn.model_selection import RepeatedStratifiedKFold

    folding = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    splits = list(folding.split(data.prompts, data.strong_better))
    found = []
    for name, fit in fits.items():
        values, held_out = [], []
        for number, (train, test) in enumerate(splits):
            part = data.rows(test)
            probabilities = fit(data.rows(train)).probabilities(part.prompts, part.embeddings)
            if number < folds:
                held_out.append(HeldOut(test, probabilities))
            value = part.apgr(probabilities)
            if value is not None:
                values.append(value)
        found.append(CrossValidated(name, float(np.mean(values)) if values else None, tuple(held_out)))
    return found


def best_of(scores: Sequence[CrossValidated]) -> str | None:
    """The family of the highest APGR; on a tie the simpler (earlier in ``FAMILIES``)."""
    ranked = [s for s in scores if s.apgr is not None]
    if not ranked:
        return None
    # Rounded, so that two families ranking the labels alike tie rather than differ by float noise.
    return max(ranked, key=lambda s: (round(s.apgr, 9), -FAMILIES.index(s.family))).family  # type: ignore[arg-type]
