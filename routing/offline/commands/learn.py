"""``routellm-serve learn``, ``versions``, ``promote`` and ``rollback``: the learner outside a
cluster, and the operator's hold on which version of a router is in service."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from routing.config import AppConfig, load_app_config
from routing.offline.commands import Echo
from routing.offline.learning.learner import Learner
from routing.offline.learning.store import Champion, LearnerStore, Version, family_scores
from routing.settings import ConfigError


def app_with_learner(config: Path, application: str | None = None) -> AppConfig:
    """The application of a Serve config file (or of a file of its ``args``) that has a learner."""
    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{config}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{config}: expected a Serve config or the args of an application")
    apps: list[dict[str, Any]] = data.get("applications") or [{"name": None, "args": data}]
    found = [a for a in apps if application in (None, a.get("name")) and (a.get("args") or {}).get("learner")]
    if not found:
        raise ConfigError(f"{config}: no application {repr(application) + ' ' if application else ''}with a learner")
    return load_app_config(found[0]["args"]).resolve_env(os.environ)


def learn(config: Path, application: str | None = None, once: bool = False, echo: Echo = print) -> None:
    """Runs the learner of ``config``'s application: one round now (``once``), or rounds as they
    fall due until interrupted."""
    learner = Learner(app_with_learner(config, application), log=echo)
    if once:
        learner.run_round()
        return
    assert learner.config is not None
    while True:
        if learner.due():
            learner.run_round()
        time.sleep(learner.config.check_s)


def versions(directory: Path, router: str, echo: Echo = print) -> list[Version]:
    """Prints and returns the kept versions of ``router``, with their evaluations."""
    store = LearnerStore(directory, router)
    champion = store.champion()
    kept = store.versions()
    for version in kept:
        mark = "*" if version.number == champion.version else " "
        line = f"{mark} {version.number:>4}  {version.checkpoint}"
        evaluation = version.evaluation
        if evaluation is not None:
            when = datetime.fromtimestamp(evaluation.time, timezone.utc).strftime("%Y-%m-%d %H:%M")
            line += (
                f"  round {evaluation.round} at {when} UTC, {evaluation.train_labels} train / "
                f"{evaluation.test_labels} test labels: {evaluation.reason}"
            )
            if evaluation.families:
                scores = family_scores(evaluation.families, evaluation.family)
                line += f"\n         APGR cross-validated / on the test slice: {scores}"
        echo(line)
    echo(f"* in service since {_when(champion)} ({champion.by})")
    return kept


def rollback(directory: Path, router: str, version: int | None = None, echo: Echo = print) -> Champion:
    """Puts ``version`` (default: the champion before the current one) back in service."""
    return _put_in_service(LearnerStore(directory, router), LearnerStore.rollback, version, echo)


def promote(directory: Path, router: str, version: int | None = None, echo: Echo = print) -> Champion:
    """Puts ``version`` (default: the newest challenger) in service."""
    return _put_in_service(LearnerStore(directory, router), LearnerStore.promote, version, echo)


def _put_in_service(
    store: LearnerStore, change: Callable[[LearnerStore, int | None], Champion], version: int | None, echo: Echo
) -> Champion:
    with store.locked():
        champion = change(store, version)
    echo(f"{store.router}: version {champion.version} in service ({champion.checkpoint}); replicas follow in seconds")
    return champion


def _when(champion: Champion) -> str:
    if champion.since == 0:
        return "the start (as configured)"
    return datetime.fromtimestamp(champion.since, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
