"""A round's challenger: the best of the challenger families fit on the own labels (or the kind
retrained on them and any configured data), given a strong-share table measured on recent
traffic, and measured against the champion on the test slice: a bootstrap interval of each APGR,
and a paired bootstrap of the two for the chance that the challenger is the better."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from routing.calibration import CalibrationTable, save_calibration
from routing.embeddings import Embedder
from routing.offline.learning.families import Labelled, apgr_of
from routing.offline.learning.refit import Refit, RefitJob
from routing.offline.learning.store import Interval
from routing.offline.training.common import Log
from routing.offline.training.fit import train_checkpoint
from routing.routers.kind import Candidate, RouterSettings, resolve
from routing.routers.kinds import KINDS
from routing.routers.scorer import CandidateScorer, scored_models, scoring_ids

EMBED_BATCH = 256


@dataclass(frozen=True)
class Contender:
    """A checkpoint, scoring the router's candidates as a Router replica scores them."""

    scorer: CandidateScorer
    candidates: tuple[Candidate, ...]

    @classmethod
    def load(
        cls, config: RouterSettings, checkpoint: str, candidates: Sequence[Candidate], embedding_id: str
    ) -> Contender:
        settings = config.model_copy(update={"checkpoint": checkpoint})
        return cls(CandidateScorer.load(settings, candidates, embedding_id), tuple(candidates))

    def scores(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        return self.scorer.scores(prompts, embeddings)


def embed_all(
    embedder: Embedder | None,
    texts: list[str],
    run: Callable[[Coroutine[Any, Any, np.ndarray]], np.ndarray] = asyncio.run,
) -> np.ndarray | None:
    """``run``: what runs the embedding; one that holds connections needs the same event loop
    every time (an ``asyncio.Runner``'s)."""
    if embedder is None or not texts:
        return None

    async def batches() -> np.ndarray:
        parts = [await embedder.embed(texts[i : i + EMBED_BATCH]) for i in range(0, len(texts), EMBED_BATCH)]
        return np.concatenate(parts)

    return run(batches())


def label_names(candidates: Sequence[Candidate]) -> tuple[str, str]:
    """The names the strong (most capable) and weak (cheapest) candidates' labels carry: what the
    router scores them by."""
    strong_id, weak_id = scoring_ids(candidates)
    return strong_id or candidates[-1].model, weak_id or candidates[0].model


def train_challenger(
    config: RouterSettings,
    candidates: Sequence[Candidate],
    out: Path,
    labels: Path,
    data: Sequence[str],
    label_weight: float,
    options: dict,
    seed: int,
    log: Log,
) -> None:
    """The router's kind trained on ``labels`` (and ``data``), scoring the candidates' pair."""
    kind = KINDS.of(config)
    strong, weak = label_names(candidates)
    # The two trainer families name the pair differently: the routers that score any pair take
    # its default, the classifiers the models whose battles are labels.
    pair = (
        {"strong": strong, "weak": weak}
        if kind.scores_any_model
        else {"strong_models": [strong], "weak_models": [weak]}
    )
    refs = [*data, str(labels)]
    weights = {str(labels): label_weight} if data else {}
    train_checkpoint(kind.name, out, refs, weights, seed, {**pair, **options}, log)


def refit_challenger(
    champion: Contender, checkpoint: str, labels: Labelled, families: Sequence[str], folds: int, seed: int
) -> tuple[RefitJob, Refit]:
    """The champion's kind's refit (:mod:`routing.offline.learning.refit`) on ``labels``."""
    strong, weak = label_names(champion.candidates)
    job = RefitJob(champion.scorer.model, checkpoint, strong, weak, labels, families, folds, seed)
    assert champion.scorer.kind.refit is not None
    return job, resolve(champion.scorer.kind.refit)(job)


def calibrate_on(contender: Contender, kind: str, prompts: list[str], embeddings: np.ndarray | None, out: Path) -> None:
    """Saves ``contender``'s strong-share table, measured on ``prompts``, into checkpoint ``out``."""
    scores = contender.scores(prompts, embeddings)
    models = scored_models(contender.scorer.inspected)
    save_calibration(out, CalibrationTable.from_scores(kind, f"{len(prompts)} recent logged prompts", scores, models))


def measure(
    scores: np.ndarray, strong_q: np.ndarray, weak_q: np.ndarray, threshold: float, resamples: int, seed: int
) -> Interval:
    """APGR of ``scores`` on items of the strong and weak quality given, with a 95 % bootstrap
    interval (items resampled), and the share of them sent to the strong model at ``threshold``."""
    point = apgr_of(scores, strong_q, weak_q)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples):
        rows = rng.integers(0, len(scores), len(scores))
        value = apgr_of(scores[rows], strong_q[rows], weak_q[rows])
        if value is not None:
            draws.append(value)
    low, high = (float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))) if draws else (None, None)
    return Interval(apgr=point, low=low, high=high, strong_share=float(np.mean(scores >= threshold)))


def p_better(
    champion: np.ndarray, challenger: np.ndarray, strong_q: np.ndarray, weak_q: np.ndarray, resamples: int, seed: int
) -> float | None:
    """The share of paired bootstrap draws of the items (one draw serves both routers) in which
    the challenger's APGR is the higher, a tie counting half: near 0.5 for two equal routers
    whatever the slice's size, near 1 for a better one only when the slice can show it."""
    rng = np.random.default_rng(seed)
    wins = []
    for _ in range(resamples):
        rows = rng.integers(0, len(champion), len(champion))
        ours = apgr_of(champion[rows], strong_q[rows], weak_q[rows])
        theirs = apgr_of(challenger[rows], strong_q[rows], weak_q[rows])
        if ours is not None and theirs is not None:
            wins.append(1.0 if theirs > ours else 0.5 if theirs == ours else 0.0)
    return float(np.mean(wins)) if wins else None
