"""``--router KIND[=CHECKPOINT_DIR]``: a router of a registered kind, on its shipped checkpoint
unless a directory is given."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from routing.routers.kind import RouterKind, RouterSettings
from routing.routers.kinds import KINDS
from routing.settings import Precision


def parse_router(spec: str, precision: Precision = "auto") -> tuple[RouterKind, RouterSettings]:
    """The kind and config a ``--router`` value names; ``precision`` applies to kinds that take one."""
    name, _, directory = spec.partition("=")
    try:
        kind = KINDS.get(name)
    except ValueError as exc:
        raise ValueError(f"--router {spec}: {exc}") from None
    fields: dict[str, str] = {"checkpoint": directory} if directory else {}
    if "precision" in kind.config.model_fields:
        fields["precision"] = precision
    try:
        return kind, kind.settings(**fields)
    except ValidationError as exc:
        raise ValueError(f"--router {spec}: {exc}") from None


def router_label(spec: str) -> str:
    """How reports name the router a spec gives: its kind, and the checkpoint directory's name."""
    name, _, directory = spec.partition("=")
    return f"{name}@{Path(directory).name}" if directory else name
