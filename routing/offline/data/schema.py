"""One validated schema per kind of preference data.

- :class:`Battle`: two models answered a prompt and one was preferred (or neither).
- :class:`JudgeScore`: a judge graded one model's answer (e.g. GPT-4, 1–10).
- :class:`GoldenLabel`: one model's answer was checked against a benchmark's gold answer.

Judge scores and golden labels become battles with :mod:`routing.offline.data.convert`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Winner = Literal["model_a", "model_b", "tie", "tie (bothbad)"]
ModelName = Field(min_length=1)
Prompt = Field(min_length=1)


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Battle(_Row):
    """Two models answered ``prompt``; ``winner`` says whose answer was preferred."""

    prompt: str = Prompt
    model_a: str = ModelName
    model_b: str = ModelName
    winner: Winner
    source: str | None = None


class JudgeScore(_Row):
    """A judge graded ``model``'s answer to ``prompt``; higher is better, any scale."""

    prompt: str = Prompt
    model: str = ModelName
    score: float
    prompt_id: str | None = Field(default=None, description="groups rows of one prompt; default: the prompt text")
    source: str | None = None


class GoldenLabel(_Row):
    """``model``'s answer to ``prompt`` was (in)correct against the benchmark's gold answer."""

    prompt: str = Prompt
    model: str = ModelName
    correct: bool
    prompt_id: str | None = Field(default=None, description="groups rows of one prompt; default: the prompt text")
    source: str | None = None


PreferenceRow = Battle | JudgeScore | GoldenLabel
SCHEMAS: dict[str, type[_Row]] = {"battles": Battle, "judge_scores": JudgeScore, "golden_labels": GoldenLabel}
