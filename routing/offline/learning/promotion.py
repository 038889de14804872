"""Whether a challenger goes live: the rule, on the test slice of the own labels.

A fixed APGR margin cannot tell a better router from noise on a slice of 30–130 labels, in
either direction. The rule asks instead how often the challenger is the better in paired
bootstrap draws of the slice (:func:`routing.offline.learning.challenge.p_better`), which
accounts for the slice's size: two equal routers stay near one half however large it is. And a
challenger never goes live when prompt length alone, fit on the same training labels, beats it
on the slice: a length router is a legitimate champion, and where ``length`` is among the
families it challenges in the other's place.
"""

from __future__ import annotations

from dataclasses import dataclass

from routing.learner_config import LearnerConfig
from routing.offline.learning.families import Labelled
from routing.offline.learning.refit import Refit
from routing.offline.learning.store import FamilyScore, Interval


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


def decide(
    config: LearnerConfig, size: int, ours: Interval, theirs: Interval, length: Interval | None, p_better: float | None
) -> Decision:
    if size < config.min_test_labels:
        return Decision(False, f"{size} test labels, {config.min_test_labels} needed to promote")
    if ours.apgr is None or theirs.apgr is None or p_better is None:
        return Decision(False, "on the test labels the strong model is not the better one: no APGR")
    against = f"APGR {theirs.apgr:.3f} against {ours.apgr:.3f} on {size} test labels, better in {p_better:.0%} of draws"
    if length is not None and length.apgr is not None and length.apgr > theirs.apgr + 1e-9:
        beaten = f"prompt length alone scores {length.apgr:.3f} on the test slice"
        return Decision(False, f"kept the champion: {beaten}, above the challenger ({against})")
    if p_better < config.confidence:
        return Decision(False, f"kept the champion: {against} ({config.confidence:.0%} needed)")
    verb = "promoted" if config.promotion == "auto" else "better: awaits 'routellm-serve promote'"
    return Decision(True, f"{verb}: {against}")
