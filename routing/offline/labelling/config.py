"""The ``label`` command's configuration file: the two upstreams, the judge and how to grade."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from routing.judge_settings import Grading, JudgePrompts, JudgeUpstream
from routing.settings import ConfigError, validate_config
from routing.upstreams.config import Upstream, check_pair


class LabelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    upstreams: dict[str, Upstream] = Field(min_length=2)
    strong: str = Field(default="strong", description="key in 'upstreams' of the strong model")
    weak: str = Field(default="weak", description="key in 'upstreams' of the weak model")
    judge: JudgeUpstream
    grading: list[Grading] = Field(default=["pairwise"], min_length=1)
    prompts: JudgePrompts = Field(default_factory=JudgePrompts)
    concurrency: int = Field(default=8, ge=1, le=256, description="prompts labelled at once")
    answer_max_tokens: int = Field(default=1024, ge=1)
    judge_max_tokens: int = Field(default=512, ge=1)
    test_fraction: float = Field(
        default=0.2, ge=0, lt=1, description="share of prompts written to test/ (by a hash of the prompt)"
    )

    @field_validator("grading")
    @classmethod
    def _distinct(cls, value: list[Grading]) -> list[Grading]:
        if len(set(value)) != len(value):
            raise ValueError("each kind of grading at most once")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> LabelConfig:
        check_pair(self.strong, self.weak, self.upstreams)
        return self


def load_label_config(path: Path, env: dict[str, str]) -> LabelConfig:
    """The file at ``path`` as a :class:`LabelConfig`, with ``*_env`` values read from ``env``."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings")
    config = validate_config(LabelConfig, data, path.name, "label config")
    resolved = config.model_copy(
        update={
            "upstreams": {key: u.resolve_env(env) for key, u in config.upstreams.items()},
            "judge": config.judge.resolve_env(env),
        }
    )
    missing = [
        f"{path.name}.{where}: no endpoint (set base_url or {u.base_url_env or 'base_url_env'})"
        for where, u in (
            (f"upstreams.{resolved.strong}", resolved.upstreams[resolved.strong]),
            (f"upstreams.{resolved.weak}", resolved.upstreams[resolved.weak]),
            ("judge", resolved.judge),
        )
        if not u.configured
    ]
    if missing:
        raise ConfigError("invalid label config:\n  " + "\n  ".join(missing))
    return resolved
