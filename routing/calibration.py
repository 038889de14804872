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

from routing.config import AppConfig, MFRouterConfig, SWRankingRouterConfig
from routing.data.files import DataFileError, records

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


def read_prompts(path: Path) -> list[str]:
    """The ``prompt`` column of a JSONL, JSON, CSV or Parquet file; for a request-log directory
    (``request_log.directory``), the routed turn (the last user message) of each record."""
    if path.is_dir():
        return _logged_prompts(path)
    prompts = []
    for number, row in records(path):
        prompt = row.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise DataFileError(f"{path}: row {number}: field 'prompt': must be non-empty text")
        prompts.append(prompt)
    if not prompts:
        raise DataFileError(f"{path}: no prompts")
    return prompts


def _logged_prompts(directory: Path) -> list[str]:
    from routing.request_log import read_request_log

    prompts = []
    for record in read_request_log(directory):
        turns = [m.content for m in record.messages or [] if m.role == "user"]
        if turns and turns[-1].strip():
            prompts.append(turns[-1])
    if not prompts:
        raise DataFileError(f"{directory}: no request-log records with messages (is 'prompts: false' set?)")
    return prompts


def router_calibrations(config: AppConfig) -> dict[str, CalibrationTable | str]:
    """Per configured router: its checkpoint's calibration table, or why it has none usable."""
    from routing.resources import checkpoint_path
    from routing.routers.checkpoint import load_manifest
    from routing.routers.pair import scoring_pair

    out: dict[str, CalibrationTable | str] = {}
    for name, router in config.routers.items():
        directory = checkpoint_path(router.checkpoint)
        table = load_calibration(directory)
        hint = f"run 'routellm-serve calibrate --router {router.type}={directory} --save'"
        if table is None:
            out[name] = f"router '{name}' has no calibration table ({directory / CALIBRATION_FILE}): {hint}"
            continue
        if isinstance(router, MFRouterConfig | SWRankingRouterConfig):
            strong, weak = config.router_model_ids
            pair = scoring_pair(
                load_manifest(directory), router.strong_model_id or strong, router.weak_model_id or weak
            )
            if pair != (table.strong_model, table.weak_model):
                out[name] = (
                    f"router '{name}' scores {pair[0]} against {pair[1]}, but its calibration table is for "
                    f"{table.strong_model} against {table.weak_model}: {hint}"
                )
                continue
        out[name] = table
    return out
