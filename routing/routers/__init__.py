"""Routers: each turns prompts into P(strong wins)."""

from __future__ import annotations

from routing.config import AppConfig, ConfigError, MFRouterConfig, RandomRouterConfig, RouterConfig
from routing.resources import MissingResource, checkpoint_path
from routing.routers.base import Router


def make_router(config: RouterConfig) -> Router:
    if isinstance(config, RandomRouterConfig):
        from routing.routers.random_router import RandomRouter

        return RandomRouter(config)
    if isinstance(config, MFRouterConfig):
        from routing.routers.mf import MFRouter

        return MFRouter(config)
    raise TypeError(f"no router for config {type(config).__name__}")


def check_routers(config: AppConfig) -> None:
    """Fail before deploying if a checkpoint is missing or was trained on another embedding model."""
    from routing.routers.mf import load_meta, scoring_pair

    problems = []
    for name, router in config.routers.items():
        if not isinstance(router, MFRouterConfig):
            continue
        where = f"args.routers.{name}"
        try:
            meta = load_meta(checkpoint_path(router.checkpoint))
            scoring_pair(router, meta)
        except (MissingResource, ValueError) as exc:
            problems.append(f"{where}: {exc}")
            continue
        if meta.embedding_model_id != config.embedding.model_id:
            problems.append(
                f"{where}: checkpoint '{router.checkpoint}' was trained on embeddings of "
                f"'{meta.embedding_model_id}', but args.embedding is '{config.embedding.model_id}'"
            )
    if problems:
        raise ConfigError("invalid application config:\n  " + "\n  ".join(problems))


__all__ = ["Router", "check_routers", "make_router"]
