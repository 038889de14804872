"""Whether a challenger goes live: the rule, on the test slice of the own labels.

A fixed APGR margin cannot tell a better router from noise on a slice of 30–130 labels, in
either direction. The rule asks instead how often the challenger is the better in paired
bootstrap draws (:func:`routing.offline.learning.challenge.p_better`), which accounts for the
number of items: two equal routers stay near one half however many there are. A challenger
never goes live when it is below the champion on the slice, nor when prompt length alone, fit on
the same training labels, beats it there: a length router is a legitimate champion, and where
``length`` is among the families it challenges in the other's place.

With ``evidence: cross_fitted`` the draws cover more than the slice: the ``drawable`` training
labels too, each scored by the challenger's family fit on the other folds (never on the label
itself), and by the champion. The learner draws those it sampled uniformly from the traffic that
the champion was not fit on; the others would bias the draws: on the labels it was fit on, the
champion's scores are in-sample, active sampling's picks lie near its threshold, and shadow
verdicts come only from requests a cheaper candidate answered. Each block (the slice, each fold)
is compared by ranks within it, since each fold's fit has its own offset. The slice, the one
uniform sample of the traffic that no challenger trains on, keeps its veto.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from routing.learner_config import LearnerConfig
from routing.offline.learning.challenge import measure, p_better
from routing.offline.learning.families import HeldOut, Labelled, fit_length
from routing.offline.learning.refit import Refit
from routing.offline.learning.store import FamilyScore, Interval

Scores = Callable[[Labelled], np.ndarray]


@dataclass(frozen=True)
class Decision:
    promoted: bool
    reason: str


def challenging_family(refit: Refit, test: Labelled | None) -> tuple[str, list[FamilyScore], str]:
    """The family that challenges (the cross-validation's choice, or ``length`` where it beats
    that choice on the test slice), every family's scores, and why length took over (or "")."""
    tested = {
        name: (test.apgr(form.probabilities(test.prompts, test.embeddings)) if test is not None else None)
        for name, form in refit.fitted.items()
    }
    scores = [FamilyScore(family=s.family, cv_apgr=s.apgr, test_apgr=tested.get(s.family)) for s in refit.scores]
    chosen, length = tested.get(refit.chosen), tested.get("length")
    if refit.chosen != "length" and chosen is not None and length is not None and length > chosen + 1e-9:
        why = f", in place of {refit.chosen}, which length beat on the test slice ({length:.3f} against {chosen:.3f})"
        return "length", scores, why
    return refit.chosen, scores, ""


@dataclass(frozen=True)
class Comparison:
    """The champion, the challenger and prompt length on the test slice, the chance that the
    challenger is the better, and the decision."""

    champion: Interval
    challenger: Interval
    length: Interval
    p_better: float | None
    decision: Decision


def compare(
    config: LearnerConfig,
    champion: Scores,
    challenger: Scores,
    train: Labelled,
    test: Labelled,
    held_out: Sequence[HeldOut],
    threshold: float,
    seed: int,
    drawable: np.ndarray | None = None,
) -> Comparison:
    """The promotion rule on ``test`` (and, by ``config.evidence``, ``held_out``: the challenger's
    family cross-fitted on ``train``, on the labels ``drawable`` marks, by default all)."""
    on_test = champion(test), challenger(test), fit_length(train).probabilities(test.prompts, test.embeddings)
    quality = test.strong_quality, test.weak_quality
    ours, theirs, length = (measure(s, *quality, threshold, config.bootstrap, seed) for s in on_test)
    blocks = [(on_test[0], on_test[1], test)]
    drawn_from = np.ones(len(train.prompts), bool) if drawable is None else drawable
    if config.evidence == "cross_fitted" and held_out and drawn_from.any():
        on_train = champion(train)
        for fold in held_out:
            keep = drawn_from[fold.rows]
            if keep.sum() >= 2:
                rows = fold.rows[keep]
                blocks.append((on_train[rows], fold.probabilities[keep], train.rows(rows)))
    chance = p_better(
        np.concatenate([_ranks(a) for a, _, _ in blocks]),
        np.concatenate([_ranks(b) for _, b, _ in blocks]),
        np.concatenate([part.strong_quality for _, _, part in blocks]),
        np.concatenate([part.weak_quality for _, _, part in blocks]),
        config.bootstrap,
        seed,
    )
    drawn = sum(len(part.prompts) for _, _, part in blocks)
    decision = decide(config, len(test.prompts), ours, theirs, length, chance, drawn)
    return Comparison(ours, theirs, length, chance, decision)


def _ranks(scores: np.ndarray) -> np.ndarray:
    return (rankdata(scores) - 0.5) / len(scores)


def decide(
    config: LearnerConfig,
    size: int,
    ours: Interval,
    theirs: Interval,
    length: Interval | None,
    p_better: float | None,
    drawn: int | None = None,
) -> Decision:
    """``size`` test labels; ``drawn``: the items of the paired draws (the slice's by default)."""
    if size < config.min_test_labels:
        return Decision(False, f"{size} test labels, {config.min_test_labels} needed to promote")
    if ours.apgr is None or theirs.apgr is None or p_better is None:
        return Decision(False, "on the test labels the strong model is not the better one: no APGR")
    of = f" of {drawn} labels (test slice and cross-fitted training labels)" if drawn and drawn > size else ""
    against = (
        f"APGR {theirs.apgr:.3f} against {ours.apgr:.3f} on {size} test labels, better in {p_better:.0%} of draws{of}"
    )
    if theirs.apgr < ours.apgr - 1e-9:
        return Decision(False, f"kept the champion: the challenger is below it on the test slice ({against})")
    if length is not None and length.apgr is not None and length.apgr > theirs.apgr + 1e-9:
        beaten = f"prompt length alone scores {length.apgr:.3f} on the test slice"
        return Decision(False, f"kept the champion: {beaten}, above the challenger ({against})")
    if p_better < config.confidence:
        return Decision(False, f"kept the champion: {against} ({config.confidence:.0%} needed)")
    verb = "promoted" if config.promotion == "auto" else "better: awaits 'routellm-serve promote'"
    return Decision(True, f"{verb}: {against}")
