"""One validated schema per kind of preference data, stored as JSON Lines."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

Winner = Literal["model_a", "model_b", "tie", "tie (bothbad)"]


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Battle(_Row):
    """Two models answered ``prompt``; ``winner`` says whose answer was preferred."""

    prompt: str
    model_a: str
    model_b: str
    winner: Winner
    source: str | None = None


class JudgeScore(_Row):
    """A judge graded ``model``'s answer to ``prompt`` (e.g. GPT-4, 1–10)."""

    prompt_id: str
    prompt: str
    model: str
    score: float = Field(ge=0)
    source: str | None = None


Row = TypeVar("Row", bound=_Row)


def read_jsonl(path: Path, schema: type[Row]) -> Iterator[Row]:
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                try:
                    yield schema.model_validate_json(line)
                except ValueError as exc:
                    raise ValueError(f"{path}:{number}: not a valid {schema.__name__}: {exc}") from None


def write_jsonl(path: Path, rows: Iterable[_Row]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row.model_dump(exclude_none=True), ensure_ascii=False) + "\n")
            count += 1
    return count
