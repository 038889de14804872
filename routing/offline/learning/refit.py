"""The learner's way to a challenger for a kind with a refit (``mf``): every challenger family
(:mod:`routing.offline.learning.families`) cross-validated on the round's training labels, each
fit on all of them, and the best by that score chosen. Any of them is saved as an mf checkpoint
of its learned form for the candidates' pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from routing.learner_config import FAMILIES
from routing.offline.learning.families import (
    MIN_EACH_OUTCOME,
    CrossValidated,
    Fit,
    HeldOut,
    Labelled,
    best_of,
    champion_fit,
    cross_validate,
    fit_length,
    fit_linear,
    fit_neighbours,
    prompt_key,
    trained_on,
    write_trained_on,
)
from routing.routers.checkpoint import EmbeddingSpec, Manifest, TrainingRecord, save
from routing.routers.kind import Router
from routing.routers.learned_forms import LearnedForm
from routing.routers.mf import MFRouter
from routing.routers.model_aliases import canonical_model_name


class RefitError(ValueError):
    """The labels cannot support a refit yet (too few of one outcome)."""


@dataclass(frozen=True)
class RefitJob:
    """A kind's refit is given the champion as it serves the candidates' pair, the round's
    training labels (prompts, the pair's ``strong`` and ``weak`` quality, and embeddings where
    the kind reads them), the families to try and the cross-validation's folds."""

    champion: Router
    champion_checkpoint: str
    strong: str
    weak: str
    labels: Labelled
    families: Sequence[str]
    folds: int
    seed: int

    @cached_property
    def champion_saw(self) -> np.ndarray:
        """Which of the labels the champion was fit on: its scores on them are in-sample."""
        saw = trained_on(self.champion_checkpoint)
        return np.array([prompt_key(p) in saw for p in self.labels.prompts], bool)


@dataclass(frozen=True)
class Refit:
    """Every family's cross-validated APGR, each family fit on all the labels, and the chosen one."""

    scores: list[CrossValidated]
    fitted: dict[str, LearnedForm]
    chosen: str
    embedding: EmbeddingSpec | None
    note: str = ""

    def held_out(self, family: str) -> tuple[HeldOut, ...]:
        """``family``'s cross-fitted probabilities on the training labels (none where it was not
        cross-validated)."""
        return next((s.held_out for s in self.scores if s.family == family), ())

    def save(self, family: str, job: RefitJob, out: Path) -> None:
        form = self.fitted[family]
        strong, weak = canonical_model_name(job.strong), canonical_model_name(job.weak)
        target = job.labels.strong_better
        manifest = Manifest(
            router="mf",
            embedding=self.embedding,
            models=[strong, weak],
            default_strong=strong,
            default_weak=weak,
            params=form.params(),
            training=TrainingRecord(
                hyperparameters={"method": "refit", "family": family, "champion": job.champion_checkpoint},
                metrics={
                    "labels": len(target),
                    "strong_better": int(target.sum()),
                    **{f"cv_apgr_{s.family}": round(s.apgr, 4) for s in self.scores if s.apgr is not None},
                },
            ),
        )
        save(out, manifest, {name: torch.from_numpy(t) for name, t in form.tensors().items()})
        write_trained_on(out, job.labels)


def refit_mf(job: RefitJob) -> Refit:
    champion = job.champion
    assert isinstance(champion, MFRouter)
    target = job.labels.strong_better
    counts, needed = np.bincount(target, minlength=2), max(MIN_EACH_OUTCOME, job.folds)
    if counts.min() < needed:
        raise RefitError(
            f"{counts[1]} labels where {job.strong}'s answer was better and {counts[0]} where "
            f"{job.weak}'s was as good: a refit needs {needed} of each"
        )
    fits, skipped = _fits(job)
    scores = cross_validate(fits, job.labels, job.folds, job.seed)
    chosen = best_of(scores)
    if chosen is None:
        raise RefitError("on the training labels the strong model is not the better one: no APGR to choose by")
    fitted = {name: fit(job.labels) for name, fit in fits.items()}
    note = f" (champion skipped: {skipped})" if skipped else ""
    return Refit(scores, fitted, chosen, champion.manifest.embedding, note)


def _fits(job: RefitJob) -> tuple[dict[str, Fit], str]:
    """The families to fit, and why ``champion`` is not among them where it was asked for ("")."""
    assert isinstance(job.champion, MFRouter)
    linear = job.champion.linear()
    every: dict[str, Fit] = {"length": fit_length, "linear": fit_linear, "neighbours": fit_neighbours}
    skipped = ""
    if linear is None:
        skipped = "the champion's score is not linear"
    elif job.champion_saw.any():
        # Its logit on the labels it was fit on is in-sample: a correction would trust it too much.
        skipped = "the champion was fit on these labels"
    else:
        every["champion"] = champion_fit(linear)
    assert set(every) <= set(FAMILIES)
    fits = {name: every[name] for name in job.families if name in every}
    return fits, skipped if "champion" in job.families else ""
