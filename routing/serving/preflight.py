"""Checks of a whole application config against what is on disk, before anything is deployed:
every router's checkpoint can serve, and a default strong share has a calibration table."""

from __future__ import annotations

from routing.config import AppConfig
from routing.resources import MissingResource
from routing.routers.checkpoint import CheckpointError
from routing.routers.kind import DEFAULT_STRONG_PERCENT
from routing.routers.kinds import KINDS
from routing.routers.scorer import calibration_of, inspect_checkpoint
from routing.settings import ConfigError


def check_routers(config: AppConfig) -> None:
    """Raises a :class:`ConfigError` naming every router whose checkpoint cannot serve (see
    :func:`~routing.serving.live_router.inspect_checkpoint`) or whose default share has no table."""
    problems = []
    for name, router in config.routers.items():
        where = f"args.routers.{name}"
        try:
            inspected = inspect_checkpoint(router, config.candidates(name), config.embedding.model_id)
        except (MissingResource, CheckpointError) as exc:
            problems.append(f"{where}: {exc}")
            continue
        if router.strong_percent is not None:
            table = calibration_of(name, KINDS.of(router), inspected)
            if isinstance(table, str):
                unset = "" if router.default_strong_percent is not None else f" (unset: {DEFAULT_STRONG_PERCENT:g} %)"
                hint = "" if unset == "" else "; or set default_threshold to route by a fixed threshold"
                problems.append(f"{where}.default_strong_percent{unset}: {table}{hint}")
    if problems:
        raise ConfigError("invalid application config:\n  " + "\n  ".join(problems))
