"""Routers: each turns prompts into P(strong wins).

Every router has a checkpoint directory (see :mod:`routing.routers.checkpoint`), is built by
``routellm-serve train <kind>`` (see :mod:`routing.training`) and scores a batch at once.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from routing.config import (
    AppConfig,
    ConfigError,
    MFRouterConfig,
    RandomRouterConfig,
    RouterConfig,
    SWRankingRouterConfig,
)
from routing.resources import MissingResource, checkpoint_path
from routing.routers.checkpoint import CheckpointError, load_manifest


class Router(Protocol):
    def score(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        """One score in [0, 1] per prompt; ``embeddings`` is given when the router's config
        says ``needs_embeddings``."""
        ...


def make_router(config: RouterConfig, upstream_ids: tuple[str | None, str | None] = (None, None)) -> Router:
    """The router a config describes. ``upstream_ids`` are the strong and weak upstreams'
    ``router_model_id``: the pair that mf and sw_ranking score unless their config names one."""
    directory = checkpoint_path(config.checkpoint)
    if isinstance(config, RandomRouterConfig):
        from routing.routers.random import RandomRouter

        return RandomRouter(directory, config.seed)
    if isinstance(config, MFRouterConfig | SWRankingRouterConfig):
        strong = config.strong_model_id or upstream_ids[0]
        weak = config.weak_model_id or upstream_ids[1]
        if isinstance(config, MFRouterConfig):
            from routing.routers.mf import MFRouter

            return MFRouter(directory, strong, weak)
        from routing.routers.sw_ranking import SWRankingRouter

        return SWRankingRouter.load(directory, strong, weak)
    from routing.routers.classifier import ClassifierRouter

    return ClassifierRouter(directory, config.type, config.base_model_path, config.torch_threads, config.precision)


def checkpoint_problems(
    where: str,
    router: RouterConfig,
    model_ids: tuple[str | None, str | None],
    embedding_model_id: str,
) -> list[str]:
    """Why ``router``'s checkpoint cannot serve: missing, of another kind, trained on another
    embedding model, or not knowing the models it is asked to score."""
    from routing.routers.pair import scoring_pair

    try:
        manifest = load_manifest(checkpoint_path(router.checkpoint), router.type)
        if isinstance(router, MFRouterConfig | SWRankingRouterConfig):
            strong, weak = model_ids
            scoring_pair(manifest, router.strong_model_id or strong, router.weak_model_id or weak)
            assert manifest.embedding is not None
            if manifest.embedding.model_id != embedding_model_id:
                return [
                    f"{where}: checkpoint '{router.checkpoint}' was trained on embeddings of "
                    f"'{manifest.embedding.model_id}', but args.embedding is '{embedding_model_id}'"
                ]
    except (MissingResource, CheckpointError) as exc:
        return [f"{where}: {exc}"]
    return []


def check_routers(config: AppConfig) -> None:
    """Fail before deploying if a checkpoint cannot serve (:func:`checkpoint_problems`) or a
    default strong share has no calibration table to go by."""
    problems = [
        problem
        for name, router in config.routers.items()
        for problem in checkpoint_problems(
            f"args.routers.{name}", router, config.router_model_ids, config.embedding.model_id
        )
    ]
    if not problems:
        from routing.calibration import router_calibrations

        calibrations = router_calibrations(config)
        problems = [
            f"args.routers.{name}.default_strong_percent: {calibrations[name]}"
            for name, router in config.routers.items()
            if router.default_strong_percent is not None and isinstance(calibrations[name], str)
        ]
    if problems:
        raise ConfigError("invalid application config:\n  " + "\n  ".join(problems))


__all__ = ["Router", "check_routers", "checkpoint_problems", "make_router"]
