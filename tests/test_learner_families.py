"""The learner's challenger families, the choice among them, and the promotion rule, on labels
whose signal is planted: each family wins where its kind of signal is the one in the labels."""

from __future__ import annotations

import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from routing.learner_config import FAMILIES, LearnerConfig
from routing.offline.learning.challenge import measure, p_better
from routing.offline.learning.families import (
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
)
from routing.offline.learning.promotion import challenging_family, compare, decide
from routing.offline.learning.refit import Refit, RefitError, RefitJob, refit_mf
from routing.resources import checkpoint_path
from routing.routers.checkpoint import load_manifest
from routing.routers.learned_forms import LinearForm, unit_rows
from routing.routers.mf import MFRouter

DIM = 384  # the shipped mf checkpoint's embedding
FITS = {"length": fit_length, "linear": fit_linear, "neighbours": fit_neighbours}
CONFIG = LearnerConfig.model_validate(
    {
        "router": "mf",
        "directory": "x",
        "judge": {"model": "j", "base_url": "http://127.0.0.1:1/v1"},
        "budget_usd_per_day": 1,
    }
)


def labelled(
    better: np.ndarray, embeddings: np.ndarray, prompts: list[str] | None = None, ties: float = 1.0
) -> Labelled:
    """Labels where the strong answer is better on ``better`` and the two tie elsewhere (both
    right, quality ``ties``), as a judge of golden-label traffic gives them."""
    prompts = prompts or [f"question {i}" for i in range(len(better))]
    strong = np.where(better, 1.0, ties)
    weak = np.where(better, 0.0, ties)
    return Labelled(prompts, embeddings.astype(np.float32), strong, weak)


def by_length(count: int, seed: int, cut: int = 200) -> Labelled:
    """Prompts longer than ``cut`` are the hard ones; the embeddings are noise."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(5, 400, count)
    prompts = [f"q{i} " + "x" * int(n) for i, n in enumerate(lengths)]
    return labelled(lengths > cut, rng.normal(size=(count, DIM)), prompts)


def by_direction(count: int, seed: int, direction: np.ndarray) -> Labelled:
    """The hard prompts lie on one side of a direction in the embedding; lengths are alike."""
    rng = np.random.default_rng(seed)
    side = rng.random(count) < 0.4
    embeddings = rng.normal(size=(count, DIM)) + np.outer(np.where(side, 2.0, -2.0), direction)
    return labelled(side, embeddings)


def by_clusters(count: int, seed: int) -> Labelled:
    """Hard prompts in two opposite clusters, easy ones in two others: no direction separates them."""
    rng = np.random.default_rng(seed)
    hard, easy = rng.normal(size=(2, DIM)) * 3
    centres = np.stack([hard, -hard, easy, -easy])
    which = rng.integers(0, 4, count)
    return labelled(which < 2, centres[which] + rng.normal(size=(count, DIM)))


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIM)
    return v / np.linalg.norm(v)


@pytest.mark.parametrize(
    ("data", "winner", "beaten"),
    [
        (by_length(240, 1), "length", ("linear", "neighbours")),
        (by_direction(240, 2, unit(3)), "linear", ("length",)),
        (by_clusters(240, 4), "neighbours", ("length", "linear")),
    ],
    ids=["length", "linear", "neighbours"],
)
def test_each_family_wins_the_cross_validation_where_its_signal_is(
    data: Labelled, winner: str, beaten: tuple[str, ...]
) -> None:
    found = cross_validate(FITS, data, folds=5, seed=0)
    scores = {s.family: s.apgr for s in found}
    assert best_of(found) == winner, scores
    # By a clear margin over the families that cannot see this kind of signal.
    assert all(scores[winner] > scores[other] + 0.1 for other in beaten), scores  # type: ignore[operator]


def test_the_champion_family_folds_its_correction_into_one_form_that_serves_alike() -> None:
    direction = unit(5)
    data = by_direction(200, 6, direction)
    champion = LinearForm((2 * direction).astype(np.float32), -1.0, {"log_chars": 0.1})
    form = champion_fit(champion)(data)
    assert isinstance(form, LinearForm)
    # The folded form scores what the regression on (embedding, features, champion logit) predicts.
    from routing.features import prompt_features
    from routing.offline.evaluation.in_domain import fit_logistic

    inputs = np.column_stack(
        [data.embeddings, prompt_features(data.prompts), champion.logits(data.prompts, data.embeddings)]
    )
    expected = fit_logistic(inputs.astype(np.float64), data.strong_better).predict_proba(inputs)[:, 1]
    np.testing.assert_allclose(form.probabilities(data.prompts, data.embeddings), expected, atol=1e-4)
    # A champion that knows the signal: its refit ranks held-out labels nearly as the truth does.
    held_out = by_direction(200, 7, direction)
    scores = form.probabilities(held_out.prompts, held_out.embeddings)
    assert held_out.apgr(scores) > held_out.apgr(held_out.strong_better.astype(float)) - 0.02  # type: ignore[operator]


def test_ties_are_labels_a_refit_learns_from_mostly_tied_traffic(tmp_path: Path) -> None:
    # The traffic of golden labels where both models are usually right: about 15 % of prompts
    # the strong model alone gets right, none the weak model alone, every other one a tie.
    data = by_length(300, 8, cut=340)
    assert 20 < data.strong_better.sum() < 70 and not np.any(data.weak_quality > data.strong_quality)
    champion = MFRouter(checkpoint_path("builtin:mf"))
    job = RefitJob(champion, "builtin:mf", "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1", data, tuple(FITS), 5, 0)
    refit = refit_mf(job)
    assert {s.family for s in refit.scores} == set(FITS) and refit.chosen == "length"
    # Each family's form, saved as an mf checkpoint, serves exactly what was fit.
    probe = by_length(50, 9, cut=340)
    for family, form in refit.fitted.items():
        refit.save(family, job, tmp_path / family)
        served = MFRouter(tmp_path / family).score(probe.prompts, probe.embeddings)
        np.testing.assert_allclose(served, form.probabilities(probe.prompts, probe.embeddings), atol=1e-5)
        manifest = load_manifest(tmp_path / family, "mf")
        assert manifest.training is not None and manifest.training.hyperparameters["family"] == family
        assert trained_on(tmp_path / family) == {prompt_key(p) for p in data.prompts}
    assert trained_on("builtin:mf") == frozenset()
    # A refit champion's logit is in-sample on the labels it was fit on: no correction of it there.
    linear = str(tmp_path / "linear")
    refit_champion = replace(job, champion=MFRouter(tmp_path / "linear"), champion_checkpoint=linear, families=FAMILIES)
    assert refit_champion.champion_saw.all() and not job.champion_saw.any()
    again = refit_mf(refit_champion)
    assert {s.family for s in again.scores} == set(FITS)
    assert again.note == " (champion skipped: the champion was fit on these labels)"
    unseen = refit_mf(replace(refit_champion, labels=by_length(300, 10, cut=340)))
    assert {s.family for s in unseen.scores} == {*FITS, "champion"} and unseen.note == ""
    too_few = labelled(np.arange(300) < 4, np.zeros((300, DIM)))
    with pytest.raises(RefitError, match="4 labels where gpt-4-1106-preview's answer was better"):
        refit_mf(RefitJob(champion, "builtin:mf", "gpt-4-1106-preview", "mixtral", too_few, tuple(FITS), 5, 0))


def test_neighbours_vote_with_the_base_rate_where_votes_are_few() -> None:
    data = by_clusters(120, 10)
    form = fit_neighbours(data)
    probe = unit_rows(data.embeddings[:3])
    votes = form.probabilities(data.prompts[:3], probe)
    assert np.all((votes > 0) & (votes < 1))
    assert form.k in (5, 10, 20, 40)


def _quality(count: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Items, half of which the strong model wins, and a router that knows which (with noise)."""
    rng = np.random.default_rng(seed)
    better = rng.random(count) < 0.5
    knows = better + rng.normal(scale=0.6, size=count)
    return np.ones(count), np.where(better, 0.0, 1.0), knows


def test_a_better_challenger_on_a_large_slice_is_promoted_an_equal_one_on_a_small_slice_is_not() -> None:
    strong, weak, knows = _quality(600, 11)
    noise = np.random.default_rng(12).normal(size=600)
    chance = p_better(noise, knows, strong, weak, 500, 0)
    assert chance is not None and chance > 0.99
    intervals = [measure(s, strong, weak, 0.5, 200, 0) for s in (noise, knows)]
    assert decide(CONFIG, 600, intervals[0], intervals[1], None, chance).promoted

    # Two routers of equal skill (independent noise around the same knowledge) on 40 items.
    strong, weak, knows = _quality(40, 13)
    other = knows + np.random.default_rng(14).normal(scale=0.3, size=40)
    chance = p_better(knows, other, strong, weak, 500, 0)
    assert chance is not None and 0.05 < chance < 0.95
    ours, theirs = measure(knows, strong, weak, 0.5, 200, 0), measure(other, strong, weak, 0.5, 200, 0)
    decision = decide(CONFIG, 40, ours, theirs, None, chance)
    assert not decision.promoted and "kept the champion" in decision.reason
    # The same router against itself: exactly even.
    assert p_better(knows, knows, strong, weak, 200, 0) == 0.5


def test_a_challenger_below_prompt_length_never_goes_live_and_length_takes_its_place() -> None:
    strong, weak, knows = _quality(600, 15)
    noise = np.random.default_rng(16).normal(size=600)
    ours, theirs, length = (measure(s, strong, weak, 0.5, 100, 0) for s in (noise, 0.5 * knows + noise, knows))
    chance = p_better(noise, 0.5 * knows + noise, strong, weak, 200, 0)
    decision = decide(CONFIG, 600, ours, theirs, length, chance)
    assert not decision.promoted and "prompt length alone scores" in decision.reason

    # The cross-validation chose linear, but on the test slice length ranks better: length challenges.
    train, test = by_length(200, 17), by_length(200, 18)
    fitted = {name: fit(train) for name, fit in FITS.items()}
    cv = cross_validate(FITS, train, 5, 0)
    family, scores, why = challenging_family(Refit(cv, fitted, "linear", None), test)
    assert family == "length" and why.startswith(", in place of linear, which length beat on the test slice")
    assert {s.family for s in scores} == set(FITS) and all(s.test_apgr is not None for s in scores)


def _noisy_length(count: int, seed: int) -> Labelled:
    """Longer prompts are harder, but 40 % of the labels say otherwise."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(5, 400, count)
    prompts = [f"q{seed}-{i} " + "x" * int(n) for i, n in enumerate(lengths)]
    return labelled((lengths > 200) ^ (rng.random(count) < 0.4), rng.normal(size=(count, DIM)), prompts)


def _blind(data: Labelled) -> np.ndarray:
    """A champion that knows nothing: a fixed pseudo-random score per prompt."""
    return np.array([zlib.crc32(p.encode()) % 10_007 for p in data.prompts], float)


def test_cross_fitted_training_labels_make_the_evidence_a_small_slice_lacks_and_add_none_to_an_equal_one() -> None:
    train, test = _noisy_length(400, 31), _noisy_length(40, 32)
    form = fit_length(train)
    held_out = cross_validate({"length": fit_length}, train, 5, 0)[0].held_out
    assert sorted(np.concatenate([f.rows for f in held_out])) == list(range(400))  # each label scored once
    on_slice, pooled = (
        compare(
            CONFIG.model_copy(update={"evidence": evidence}), _blind,
            lambda data: form.probabilities(data.prompts, data.embeddings), train, test, held_out, 0.5, 0,
        )
        for evidence in ("test_slice", "cross_fitted")
    )  # fmt: skip
    assert on_slice.p_better is not None and pooled.p_better is not None
    assert on_slice.p_better < CONFIG.confidence < pooled.p_better
    assert not on_slice.decision.promoted and pooled.decision.promoted
    assert "of 440 labels (test slice and cross-fitted training labels)" in pooled.decision.reason
    assert pooled.challenger == on_slice.challenger  # the APGR reported is the slice's either way
    # None drawable (a champion fit on every training label scores them in-sample): the slice's alone.
    in_sample = compare(
        CONFIG, _blind, lambda data: form.probabilities(data.prompts, data.embeddings), train, test, held_out, 0.5, 0,
        np.zeros(len(train.prompts), bool),
    )  # fmt: skip
    assert in_sample.p_better == on_slice.p_better and not in_sample.decision.promoted

    # A challenger as blind as the champion, cross-fitted as blind: no evidence either way.
    blind_folds = tuple(HeldOut(f.rows, _blind(train.rows(f.rows)) * 0.5 + f.rows) for f in held_out)
    equal = compare(CONFIG, _blind, lambda data: -_blind(data), train, test, blind_folds, 0.5, 0)
    assert equal.p_better is not None and 0.05 < equal.p_better < 0.95 and not equal.decision.promoted


def test_a_challenger_below_the_champion_on_the_test_slice_never_goes_live_whatever_the_other_evidence() -> None:
    strong, weak, knows = _quality(100, 17)
    noise = np.random.default_rng(18).normal(size=100)
    ours, theirs = measure(knows, strong, weak, 0.5, 100, 0), measure(noise, strong, weak, 0.5, 100, 0)
    decision = decide(CONFIG, 100, ours, theirs, None, 0.99, 1000)
    assert not decision.promoted and "the challenger is below it on the test slice" in decision.reason
