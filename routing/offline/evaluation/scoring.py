"""Scores of one router on a benchmark in both settings, from one pass of its model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routing.offline.evaluation import in_domain
from routing.routers.kind import Router, RouterKind, resolve


@dataclass(frozen=True)
class SettingScores:
    """A setting's scores; ``None`` where the router has none there. A ``baseline`` router has
    none in either: ``evaluate()`` draws the random baseline over many seeds in its place."""

    out_of_domain: np.ndarray | None
    in_domain: np.ndarray | None
    baseline: bool = False


def score_settings(
    kind: RouterKind,
    router: Router,
    prompts: list[str],
    embeddings: np.ndarray | None,
    labels: np.ndarray,
    in_domain_folds: int | None,
) -> SettingScores:
    """``labels``: per item an outcome (see :func:`in_domain.outcomes`); ``in_domain_folds``:
    None skips the in-domain setting, as does a kind without an in-domain refit. The
    checkpoint's model runs once; in-domain fits reuse its embeddings or features."""
    if kind.baseline:
        return SettingScores(None, None, baseline=True)
    if kind.in_domain is None:
        return SettingScores(np.asarray(router.score(prompts, embeddings)), None)
    out, fit = resolve(kind.in_domain)(router, prompts, embeddings, labels)
    inside = None if in_domain_folds is None else in_domain.cross_fit(prompts, fit, in_domain_folds)
    return SettingScores(out, inside)
