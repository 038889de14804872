"""Thresholds for a share of strong-model calls.

A router's scores rank prompts but are not calibrated probabilities (MF's median on Arena-style
prompts is far below 0.5), so "send 30 % to the strong model" needs a threshold read from the
router's own scores on a pool of prompts: the (1 − p) quantile. A checkpoint stores that
quantile for every whole percent in ``calibration.json``, with what it was measured on; the
service reads it to serve ``router-<name>-<percent>%``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

CALIBRATION_FILE = "calibration.json"
DEFAULT_POOL = Path("data/calibration/arena-hard.jsonl.gz")
PERCENTS = 101  # 0 %, 1 %, ..., 100 %


class CalibrationError(ValueError):
    pass


class CalibrationTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    router: str
    pool: str = Field(description="the prompts the scores were measured on")
    prompts: int = Field(ge=1)
    strong_model: str | None = Field(default=None, description="the scoring pair, for routers that score any pair")
    weak_model: str | None = None
    thresholds: list[float] = Field(
        min_length=PERCENTS, max_length=PERCENTS, description="thresholds[p]: p % of the pool scores at or above it"
    )

    @classmethod
    def from_scores(
        cls, router: str, pool: str, scores: np.ndarray, pair: tuple[str | None, str | None] = (None, None)
    ) -> CalibrationTable:
        scores = np.asarray(scores, dtype=np.float64)
        if len(scores) == 0:
            raise CalibrationError("the prompt pool is empty")
        levels = np.linspace(0.0, 1.0, PERCENTS)
        thresholds = np.quantile(scores, 1.0 - levels, method="higher")
        # Nothing is strong at 0 % and everything is at 100 %, whatever the scores are.
        thresholds[0], thresholds[-1] = 1.0, 0.0
        return cls(
            router=router,
            pool=pool,
            prompts=len(scores),
            strong_model=pair[0],
            weak_model=pair[1],
            thresholds=[round(float(t), 6) for t in thresholds],
        )

    def threshold(self, strong_percent: float) -> float:
        """The threshold for ``strong_percent`` (0–100), interpolated between whole percents."""
        if not 0.0 <= strong_percent <= 100.0:
            raise CalibrationError(f"a strong share is a percentage in [0, 100], got {strong_percent}")
        return float(np.interp(strong_percent, np.arange(PERCENTS), self.thresholds))


def save_calibration(directory: Path, table: CalibrationTable) -> Path:
    path = directory / CALIBRATION_FILE
    path.write_text(table.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path


def load_calibration(directory: Path) -> CalibrationTable | None:
    path = directory / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        return CalibrationTable.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValidationError, json.JSONDecodeError) as exc:
        raise CalibrationError(f"{path}: not a calibration table: {exc}") from None


def table_for(router: str, kind: str, directory: Path, pair: tuple[str, str] | None) -> CalibrationTable | str:
    """The calibration table in checkpoint ``directory`` that router ``router`` (of ``kind``)
    can serve with, or why there is none: none saved, or one measured for another scoring pair
    (``pair``: the pair a router that scores any two models scores)."""
    table = load_calibration(directory)
    hint = f"run 'routellm-serve calibrate --router {kind}={directory} --save'"
    if table is None:
        return f"router '{router}' has no calibration table ({directory / CALIBRATION_FILE}): {hint}"
    if pair is not None and pair != (table.strong_model, table.weak_model):
        return (
            f"router '{router}' scores {pair[0]} against {pair[1]}, but its calibration table is for "
            f"{table.strong_model} against {table.weak_model}: {hint}"
        )
    return table
