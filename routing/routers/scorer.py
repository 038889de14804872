"""A router's checkpoint scoring one list of candidates: built once from the router's kind, its
checkpoint and the candidates (cheapest first, the most capable last), it answers for a batch of
prompts how likely the most capable candidate is to beat each cheaper one. Serving, ``calibrate``,
``evaluate`` and the learner all score through it; :mod:`routing.routers.rule` turns its answer
into a choice.

A kind that scores any two of its checkpoint's models (mf, sw_ranking) scores the most capable
against each cheaper candidate, each by its ``router_model_id`` (else its model name; the two
ends may be left to the checkpoint's default pair); the other kinds score their own pair only,
so they route between two candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from routing.calibration import CalibrationTable, table_for
from routing.resources import checkpoint_path
from routing.routers.checkpoint import CheckpointError, Manifest, load_manifest
from routing.routers.kind import (
    AnyPairRouter,
    Candidate,
    ModelPair,
    PairsScorer,
    Router,
    RouterKind,
    RouterSettings,
    ScoringPair,
)
from routing.routers.kinds import KINDS
from routing.routers.pair import ladder_models, scoring_pair


@dataclass(frozen=True)
class Inspected:
    directory: Path
    pair: tuple[str, str] | None  # the pair a router that scores any two models scores, resolved
    # More than two candidates: the most capable against each cheaper one, cheapest first, resolved.
    ladder: tuple[ModelPair, ...] = ()


def inspect_checkpoint(
    config: RouterSettings, candidates: Sequence[Candidate], embedding_model_id: str | None
) -> Inspected:
    """Checks that ``config``'s checkpoint can score ``candidates``: it exists, is of the router's
    kind, knows the models it is asked to score and (unless ``embedding_model_id`` is None) was
    trained on the embedding model in service."""
    kind = KINDS.of(config)
    directory = checkpoint_path(config.checkpoint)
    manifest = load_manifest(directory, kind.name)
    resolved = scoring_pair(manifest, *scoring_ids(candidates)) if kind.scores_any_model else None
    ladder: tuple[ModelPair, ...] = ()
    if len(candidates) > 2:
        if resolved is None:
            raise CheckpointError(f"a {kind.name} router scores one pair of models, not {len(candidates)} candidates")
        ladder = ladder_pairs(manifest, candidates, resolved)
    if kind.needs_embeddings and embedding_model_id is not None:
        trained_on = manifest.embedding.model_id if manifest.embedding else None
        if trained_on != embedding_model_id:
            raise CheckpointError(
                f"checkpoint '{config.checkpoint}' was trained on embeddings of '{trained_on}', "
                f"but args.embedding is '{embedding_model_id}'"
            )
    return Inspected(directory, resolved, ladder)


def ladder_pairs(manifest: Manifest, candidates: Sequence[Candidate], pair: tuple[str, str]) -> tuple[ModelPair, ...]:
    """The most capable candidate against each cheaper one, cheapest first; the candidates
    between the two ends are scored by their ``router_model_id``, else their model name."""
    top, cheapest = pair
    names = [cheapest, *(c.router_model_id or c.model for c in candidates[1:-1])]
    try:
        return tuple(scoring_pair(manifest, top, name) for name in names)
    except CheckpointError as exc:
        scored = ", ".join(f"{c.key} as {name}" for c, name in zip(candidates, [*names, top], strict=True))
        raise CheckpointError(f"candidates ({scored}): {exc}") from None


def calibration_of(router: str, kind: RouterKind, inspected: Inspected) -> CalibrationTable | str:
    """The table router ``router`` turns strong shares into thresholds with, or why it has none."""
    if not kind.calibrated:
        return f"router '{router}' ({kind.name}) has no strong shares: ask for a threshold"
    return table_for(router, kind.name, inspected.directory, scored_models(inspected))


def scored_models(inspected: Inspected) -> list[str] | None:
    """The models the checkpoint scores for the candidates, cheapest first, as its calibration
    table names them; None for a kind that scores its own pair."""
    if inspected.ladder:
        return ladder_models(inspected.ladder)
    return [inspected.pair[1], inspected.pair[0]] if inspected.pair else None


def scoring_ids(candidates: Sequence[Candidate]) -> ScoringPair:
    """The names a router scores its most capable and its cheapest candidate by (None: its
    checkpoint's default)."""
    return candidates[-1].router_model_id, candidates[0].router_model_id


def named_candidates(names: Sequence[str | None]) -> tuple[Candidate, ...]:
    """Candidates known only by the names a checkpoint scores them by, cheapest first (None, at
    either end: the checkpoint's default)."""
    return tuple(
        Candidate(key=name or f"candidate {i}", model=name or "", router_model_id=name) for i, name in enumerate(names)
    )


@dataclass(frozen=True)
class CandidateScorer:
    """``kind``'s checkpoint loaded for one list of candidates (what :func:`inspect_checkpoint`
    found of it in ``inspected``)."""

    kind: RouterKind
    model: Router
    inspected: Inspected
    ladder: PairsScorer | None  # more than two candidates: the most capable against each cheaper one

    @classmethod
    def load(
        cls, config: RouterSettings, candidates: Sequence[Candidate], embedding_model_id: str | None = None
    ) -> CandidateScorer:
        """Raises :class:`CheckpointError` (or :class:`~routing.resources.MissingResource`) when
        the checkpoint cannot score the candidates."""
        kind = KINDS.of(config)
        inspected = inspect_checkpoint(config, candidates, embedding_model_id)
        model = kind.router(config, inspected.pair or (None, None))
        ladder = cast(AnyPairRouter, model).against(inspected.ladder) if inspected.ladder else None
        return cls(kind, model, inspected, ladder)

    def beaten(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        """One row per prompt, one column per cheaper candidate, cheapest first: P(the most
        capable candidate wins over it). ``embeddings`` are read where the kind needs them."""
        if self.ladder is not None:
            return np.asarray(self.ladder.score(prompts, embeddings), dtype=float)
        return np.asarray(self.model.score(prompts, embeddings), dtype=float).reshape(-1, 1)

    def scores(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        """One score per prompt, the lowest P(the most capable wins) over the cheaper candidates:
        the most capable is chosen exactly when it reaches the threshold."""
        return self.beaten(prompts, embeddings).min(axis=1)
