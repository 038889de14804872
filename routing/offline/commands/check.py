"""``routellm-serve check``: a Serve config file checked as the service checks it when it starts,
without starting Ray: each application's ``args`` (with the environment's ``*_env`` values
applied), every router's checkpoint and calibration table, and the ``deployments`` it sets, with
their ``user_config``. The errors are the service's, each naming its key by its path."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from routing.config import (
    AppConfig,
    GraphDeployment,
    RouterUserConfig,
    load_app_config,
    load_batching_config,
    load_router_user_config,
)
from routing.offline.commands import Echo
from routing.resources import MissingResource
from routing.routers.checkpoint import CheckpointError
from routing.routers.kinds import KINDS
from routing.routers.scorer import calibration_of, inspect_checkpoint
from routing.serving.preflight import check_routers
from routing.settings import ConfigError
from routing.upstreams.config import LocalUpstream, Upstream

# The application this package serves; other applications of a file are left to Ray.
IMPORT_PATH = "graph:build_app"


@dataclass(frozen=True)
class CheckedApp:
    name: str
    config: AppConfig


def read_serve_config(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("applications"), list) or not data["applications"]:
        raise ConfigError(f"{path}: applications: expected a Serve config file with a list of applications")
    return data


def check(path: Path, env: Mapping[str, str] = os.environ) -> list[CheckedApp]:
    """This package's applications in the Serve config file ``path``, each checked; a
    :class:`ConfigError` lists every problem of every application."""
    checked, problems = [], []
    for index, app in enumerate(read_serve_config(path)["applications"]):
        if not isinstance(app, dict):
            problems.append(f"applications[{index}]: expected a mapping")
            continue
        if app.get("import_path") != IMPORT_PATH:
            continue
        name = str(app.get("name", f"applications[{index}]"))
        try:
            config = load_app_config(app.get("args")).resolve_env(env)
        except ConfigError as exc:
            problems.append(f"application '{name}': {exc}")
            continue
        found = [str(e) for e in (_error(check_routers, config), _error(_check_deployments, config, app)) if e]
        problems += [f"application '{name}': {error}" for error in found]
        if not found:
            checked.append(CheckedApp(name, config))
    if problems:
        raise ConfigError(f"{path}:\n" + "\n".join(problems))
    if not checked:
        raise ConfigError(f"{path}: no application with import_path {IMPORT_PATH}")
    return checked


def _error(step: Callable[..., None], *args: Any) -> ConfigError | None:
    try:
        step(*args)
    except ConfigError as exc:
        return exc
    return None


def _check_deployments(config: AppConfig, app: dict[str, Any]) -> None:
    deployments = app.get("deployments") or []
    graph = config.deployments()
    problems = []
    for index, entry in enumerate(deployments):
        where = f"deployments[{index}]"
        name = entry.get("name") if isinstance(entry, dict) else None
        if name not in graph:
            problems.append(f"{where}.name: no deployment {name!r} in this application (it has {', '.join(graph)})")
            continue
        if "user_config" not in entry:
            continue
        try:
            _check_user_config(config, graph[name], name, entry["user_config"])
        except ConfigError as exc:
            problems += [f"{where} ({name}) {line}" for line in _items(exc)]
    if problems:
        raise ConfigError("invalid deployments:\n  " + "\n  ".join(problems))


def _items(exc: ConfigError) -> list[str]:
    """The problems a ConfigError lists under its heading ("invalid ...:"), one per line."""
    lines = str(exc).splitlines()
    return [line.strip() for line in lines[1:]] if len(lines) > 1 else lines


def _check_user_config(config: AppConfig, deployment: GraphDeployment, name: str, user_config: Any) -> None:
    if deployment.role == "embedding":
        load_batching_config(user_config)
    elif deployment.role == "router" and deployment.key is not None:
        _check_router_user_config(config, deployment.key, load_router_user_config(user_config))
    elif deployment.role == "ingress":
        raise ConfigError(
            "user_config: the Ingress takes no user_config; a router's defaults are set in the user_config "
            "of its own deployment, Router-<name> (default_strong_percent or default_threshold)"
        )
    else:
        raise ConfigError(f"user_config: {name} takes no user_config")


def _check_router_user_config(config: AppConfig, router: str, user_config: RouterUserConfig) -> None:
    """The checkpoint it names can serve the router, and a default share has a table to hold it
    (the configured checkpoint itself is checked with the application's args)."""
    asks_share = "default_strong_percent" in user_config.model_fields_set and user_config.strong_percent is not None
    if user_config.checkpoint is None and not asks_share:
        return
    settings = config.routers[router]
    if user_config.checkpoint is not None:
        settings = settings.model_copy(update={"checkpoint": user_config.checkpoint})
    try:
        inspected = inspect_checkpoint(settings, config.candidates(router), config.embedding.model_id)
    except (MissingResource, CheckpointError) as exc:
        raise ConfigError(f"user_config.checkpoint: {exc}") from None
    if asks_share:
        table = calibration_of(router, KINDS.of(settings), inspected)
        if isinstance(table, str):
            raise ConfigError(f"user_config.default_strong_percent: {table}")


def describe(app: CheckedApp) -> list[str]:
    """What the application will serve, as ``check`` and ``up`` print it."""
    config = app.config
    lines = [f"application '{app.name}': routers {', '.join(f'router-{name}' for name in config.routers)}"]
    lines += [f"  upstream {key}: {upstream.model}, {_where(upstream)}" for key, upstream in config.upstreams.items()]
    return lines


def _where(upstream: Upstream) -> str:
    if isinstance(upstream, LocalUpstream):
        return "generated in its replica"
    if upstream.base_url is not None:
        return f"at {upstream.base_url}"
    return f"unconfigured until {upstream.base_url_env or 'base_url'} is set"


def check_command(path: Path, echo: Echo = print) -> None:
    for app in check(path):
        for line in describe(app):
            echo(line)
    echo(f"{path}: ok")
