"""Benchmark files: one row per prompt with its quality under each model.

Columns: an optional ``id``, the ``prompt``, and one column per model holding that model's
quality on the prompt: a score (e.g. a 1–10 judge grade) or a correctness flag (true/false or
1/0). CSV or JSON Lines (optionally gzipped). Any two model columns can be compared as the
strong and the weak model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from routing.offline.data.files import DataFileError, records

RESERVED = ("id", "prompt")
TRUE, FALSE = ("true", "yes"), ("false", "no")


@dataclass(frozen=True)
class Benchmark:
    name: str
    ids: list[str]
    prompts: list[str]
    quality: dict[str, np.ndarray]

    def pair(self, strong: str, weak: str) -> tuple[np.ndarray, np.ndarray]:
        for role, model in (("strong", strong), ("weak", weak)):
            if model not in self.quality:
                raise DataFileError(
                    f"{self.name}: no column '{model}' for the {role} model; model columns: {', '.join(self.quality)}"
                )
        return self.quality[strong], self.quality[weak]


def _number(value: object) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in TRUE or text in FALSE:
            return float(text in TRUE)
        return float(text)
    raise ValueError(value)


def read_benchmark(path: Path | str) -> Benchmark:
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    ids: list[str] = []
    prompts: list[str] = []
    values: dict[str, list[float]] = {}
    for number, row in records(path):
        if not values:
            models = [c for c in row if c not in RESERVED]
            if "prompt" not in row:
                raise DataFileError(f"{path}: missing column 'prompt'")
            if len(models) < 2:
                raise DataFileError(f"{path}: needs a quality column for at least two models, found {models}")
            values = {m: [] for m in models}
        prompt = row.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise DataFileError(f"{path}: row {number}: field 'prompt': must be non-empty text")
        for model, column in values.items():
            if model not in row:
                raise DataFileError(f"{path}: row {number}: field '{model}': missing")
            try:
                column.append(_number(row[model]))
            except ValueError:
                raise DataFileError(
                    f"{path}: row {number}: field '{model}': not a score or true/false (got {row[model]!r:.40})"
                ) from None
        ids.append(str(row.get("id", number)))
        prompts.append(prompt)
    if not prompts:
        raise DataFileError(f"{path}: no rows")
    name = path.name.split(".")[0]  # mmlu.jsonl.gz → mmlu
    return Benchmark(name, ids, prompts, {m: np.array(v) for m, v in values.items()})
