"""Checks of a whole application config against what is on disk, before anything is deployed:
every router's checkpoint can serve, and a default strong share has a calibration table."""

from __future__ import annotations

from routing.config import AppConfig
from routing.routers.kinds import KINDS
from routing.routers.live import calibration_of, checkpoint_problems, inspect_checkpoint, scoring_ids
from routing.settings import ConfigError


def check_routers(config: AppConfig) -> None:
    """Raises a :class:`ConfigError` naming every router whose checkpoint cannot serve (see
    :func:`~routing.routers.live.inspect_checkpoint`) or whose default share has no table."""
    pairs = {name: scoring_ids(config.candidates(name)) for name in config.routers}
    embedding = config.embedding.model_id
    problems = [
        problem
        for name, router in config.routers.items()
        for problem in checkpoint_problems(f"args.routers.{name}", router, pairs[name], embedding)
    ]
    if not problems:
        for name, router in config.routers.items():
            if router.default_strong_percent is None:
                continue
            table = calibration_of(name, KINDS.of(router), inspect_checkpoint(router, pairs[name], embedding))
            if isinstance(table, str):
                problems.append(f"args.routers.{name}.default_strong_percent: {table}")
    if problems:
        raise ConfigError("invalid application config:\n  " + "\n  ".join(problems))
