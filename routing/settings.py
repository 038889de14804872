"""What every configuration model shares: strict pydantic models, field types, and errors that
name each bad key by its full path, e.g. ``args.routers.mf.checkpont: unknown key``.

Ray's own schema silently ignores unknown keys; every model here refuses them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Threshold = Annotated[float, Field(ge=0.0, le=1.0)]
StrongPercent = Annotated[float, Field(ge=0.0, le=100.0)]
Precision = Literal["auto", "float32"]
PRECISION_HELP = "auto: float16 on a GPU, bfloat16 on a CPU that computes it natively, else float32"


class ConfigError(ValueError):
    """A configuration is invalid; the message names every offending key by its path."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


M = TypeVar("M", bound=BaseModel)


def validate_config(model: type[M], args: Mapping[str, Any] | None, root: str, what: str) -> M:
    """``args`` as ``model``, or a :class:`ConfigError` naming every bad key by its path under ``root``."""
    data = dict(args or {})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [describe(err, data, root) for err in exc.errors(include_url=False)]
        raise ConfigError(f"invalid {what}:\n  " + "\n  ".join(lines)) from None


def describe(err: Any, data: Any, root: str) -> str:
    """One pydantic error as ``<path>: <what is wrong>``."""
    path, node = [root], data
    for part in err["loc"]:
        # Discriminated unions put the tag ('openai', 'mf', ...) into the location; it is not a key.
        if isinstance(node, dict) and part not in node and part in (node.get("backend"), node.get("type")):
            continue
        path.append(str(part))
        node = (
            node.get(part)
            if isinstance(node, dict)
            else (node[part] if isinstance(node, list) and isinstance(part, int) and part < len(node) else None)
        )
    where = ".".join(path)
    if err["type"] == "extra_forbidden":
        return f"{where}: unknown key '{path[-1]}'"
    if err["type"] == "union_tag_not_found":
        return f"{where}: missing key {err['ctx']['discriminator']}"
    message = err["msg"].removeprefix("Value error, ")
    return f"{where}: {message}"
