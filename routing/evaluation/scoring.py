"""Scores of one router on a benchmark in both settings, from one pass of its model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routing.evaluation import in_domain
from routing.routers import Router
from routing.routers.classifier import ClassifierRouter, head_probabilities
from routing.routers.mf import MFRouter
from routing.routers.random import RandomRouter
from routing.routers.sw_ranking import SWRankingRouter


@dataclass(frozen=True)
class SettingScores:
    """``None`` stands for the random baseline, which evaluate() draws over many seeds."""

    out_of_domain: np.ndarray | None
    in_domain: np.ndarray | None


def score_settings(
    router: Router,
    prompts: list[str],
    embeddings: np.ndarray | None,
    labels: np.ndarray,
    in_domain_folds: int | None,
) -> SettingScores:
    """``labels``: per item an outcome (see :func:`in_domain.outcomes`); ``in_domain_folds``:
    None skips the in-domain setting. The checkpoint's model runs once; in-domain fits reuse
    its embeddings or features."""
    if isinstance(router, RandomRouter):
        return SettingScores(None, None)
    fit: in_domain.FitAndScore
    if isinstance(router, ClassifierRouter):
        features = router.features(prompts)
        out = head_probabilities(router.model.head, features)[:, in_domain.STRONG_WINS]
        fit = in_domain.head_fit_and_score(features, labels)
    else:
        assert embeddings is not None
        out = np.asarray(router.score(prompts, embeddings))
        if isinstance(router, MFRouter):
            fit = in_domain.mf_fit_and_score(embeddings, labels)
        elif isinstance(router, SWRankingRouter):
            fit = in_domain.sw_ranking_fit_and_score(router, embeddings, labels)
        else:
            raise TypeError(f"no in-domain setting for {type(router).__name__}")
    inside = None if in_domain_folds is None else in_domain.cross_fit(prompts, fit, in_domain_folds)
    return SettingScores(out, inside)
