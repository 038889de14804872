"""Prompt features beside the embedding: what a sentence encoder averages away.

Mean-pooled embeddings say what a prompt is about, not how long it is or whether it holds code
or a formula; these features do. Each is a log count or a share, so that one very long prompt
does not dominate a linear model. Routers see the last user turn, so there is no turn count.
"""

from __future__ import annotations

import re

import numpy as np

_CODE = re.compile(r"```|\bdef |\bclass |\breturn\b|\bimport |[{};]\s*$|==|\bfunction\b|#include|</?\w+>", re.M)
_MATHS = re.compile(r"\$|\\frac|\\sqrt|\^|\d\s*[-+*/=]\s*\d|\bsolve\b|\bequation|\bprobability\b|\bintegral\b", re.I)
_CHOICE = re.compile(r"(?:^|\n)\s*\(?[A-D][).:]\s", re.M)

FEATURES: dict[str, str] = {
    "log_chars": "log(1 + characters)",
    "log_lines": "log(1 + line breaks)",
    "code": "log(1 + code markers: fences, def/class/return/import, braces and semicolons at line ends, tags)",
    "maths": "log(1 + maths markers: $, \\frac, \\sqrt, ^, arithmetic between digits, solve/equation/probability)",
    "digit_share": "share of characters that are digits",
    "choices": "1 when the prompt lists at least three lettered options (A) B) C) ...)",
    "questions": "log(1 + question marks)",
}
FEATURE_NAMES = tuple(FEATURES)


def _row(prompt: str) -> list[float]:
    length = len(prompt)
    return [
        np.log1p(length),
        np.log1p(prompt.count("\n")),
        np.log1p(len(_CODE.findall(prompt))),
        np.log1p(len(_MATHS.findall(prompt))),
        sum(c.isdigit() for c in prompt) / max(length, 1),
        float(len(_CHOICE.findall(prompt)) >= 3),
        np.log1p(prompt.count("?")),
    ]


def prompt_features(prompts: list[str], names: tuple[str, ...] = FEATURE_NAMES) -> np.ndarray:
    """One row per prompt, one column per name in ``names`` (a subset of :data:`FEATURES`, in any order)."""
    unknown = [name for name in names if name not in FEATURES]
    if unknown:
        raise ValueError(f"unknown prompt feature(s) {', '.join(unknown)} (features: {', '.join(FEATURE_NAMES)})")
    columns = [FEATURE_NAMES.index(name) for name in names]
    table = np.array([_row(prompt) for prompt in prompts], dtype=np.float32).reshape(len(prompts), len(FEATURE_NAMES))
    return table[:, columns]
