"""Thresholds for a share of strong-model calls, and for a budget.

A router's scores rank prompts but are not calibrated probabilities (MF's median on Arena-style
prompts is far below 0.5), so "send 30 % to the strong model" needs a threshold read from the
router's own scores on a pool of prompts: the (1 − p) quantile. A checkpoint stores that
quantile for every whole percent in ``calibration.json``, with what it was measured on; the
service reads it to serve ``router-<name>-<percent>%``.

The same table holds, for each of those thresholds, which share of the pool each candidate gets
and the mean prompt tokens of its share, so that a mean cost per request follows from the
candidates' configured prices (as the cost metrics price an answer: prompt tokens × input price +
completion tokens × output price), and ``router-<name>-$<usd>`` from the dearest threshold within
that budget.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from routing.upstreams.config import Price

CALIBRATION_FILE = "calibration.json"
DEFAULT_POOL = Path("data/calibration/arena-hard.jsonl.gz")
PERCENTS = 101  # 0 %, 1 %, ..., 100 %


class CalibrationError(ValueError):
    pass


class Share(BaseModel):
    """A candidate's part of the pool at one threshold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    share: float = Field(ge=0, le=1)
    prompt_tokens: float = Field(ge=0, description="the mean prompt tokens of the prompts it gets")


class Costs(BaseModel):
    """Per whole percent of the table (its threshold), each candidate's share, cheapest first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    completion_tokens: int = Field(ge=0, description="the completion tokens priced per answer")
    shares: list[list[Share]] = Field(min_length=PERCENTS, max_length=PERCENTS)

    def mean_usd(self, percent: int, prices: Sequence[Price]) -> float:
        """The mean cost per request at the threshold of ``percent``, from each candidate's price."""
        return sum(
            part.share * price.usd(part.prompt_tokens, self.completion_tokens)
            for part, price in zip(self.shares[percent], prices, strict=True)
        )


class CalibrationTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    router: str
    pool: str = Field(description="the prompts the scores were measured on")
    prompts: int = Field(ge=1)
    candidates: list[str] | None = Field(
        default=None,
        min_length=2,
        description="the models scored, cheapest first, for routers that score models by name (two: a "
        "pair, more: each cheaper one against the last); None for a checkpoint that scores one pair",
    )
    thresholds: list[float] = Field(
        min_length=PERCENTS, max_length=PERCENTS, description="thresholds[p]: p % of the pool scores at or above it"
    )
    costs: Costs | None = Field(default=None, description="what each threshold sends where, to price a budget")

    @model_validator(mode="before")
    @classmethod
    def _scoring_pair_as_candidates(cls, data: Any) -> Any:
        """Reads tables saved with a pair as ``strong_model`` and ``weak_model``."""
        if isinstance(data, dict) and ("strong_model" in data or "weak_model" in data):
            data = dict(data)
            strong, weak = data.pop("strong_model", None), data.pop("weak_model", None)
            if strong is not None and weak is not None and data.get("candidates") is None:
                data["candidates"] = [weak, strong]
        return data

    @classmethod
    def from_scores(
        cls,
        router: str,
        pool: str,
        scores: np.ndarray,
        candidates: Sequence[str] | None = None,
        costs: Callable[[list[float]], Costs] | None = None,
    ) -> CalibrationTable:
        """``scores``: the pool's scores, one per prompt (the lowest over the cheaper candidates
        for more than two); ``costs``: what each of the table's thresholds sends where."""
        scores = np.asarray(scores, dtype=np.float64)
        if len(scores) == 0:
            raise CalibrationError("the prompt pool is empty")
        levels = np.linspace(0.0, 1.0, PERCENTS)
        thresholds = np.quantile(scores, 1.0 - levels, method="higher")
        # Nothing is strong at 0 % and everything is at 100 %, whatever the scores are.
        thresholds[0], thresholds[-1] = 1.0, 0.0
        rounded = [round(float(t), 6) for t in thresholds]
        return cls(
            router=router,
            pool=pool,
            prompts=len(scores),
            candidates=list(candidates) if candidates else None,
            thresholds=rounded,
            costs=costs(rounded) if costs else None,
        )

    def threshold(self, strong_percent: float) -> float:
        """The threshold for ``strong_percent`` (0–100), interpolated between whole percents."""
        if not 0.0 <= strong_percent <= 100.0:
            raise CalibrationError(f"a strong share is a percentage in [0, 100], got {strong_percent}")
        return float(np.interp(strong_percent, np.arange(PERCENTS), self.thresholds))

    def budget_threshold(self, usd: float, prices: Sequence[Price]) -> float:
        """The threshold of the largest whole strong share whose mean cost per request on the
        pool is at most ``usd``; :class:`CalibrationError` when even the cheapest routing costs more."""
        if self.costs is None:
            raise CalibrationError("its calibration table has no costs: run calibrate --save again")
        within = [p for p in range(PERCENTS) if self.costs.mean_usd(p, prices) <= usd]
        if not within:
            least = self.costs.mean_usd(0, prices)
            raise CalibrationError(f"a budget of ${usd:g} is below the least mean cost per request, ${least:.6g}")
        return self.thresholds[max(within)]


def calibration_path(directory: Path, candidates: Sequence[str] | None = None) -> Path:
    """Where checkpoint ``directory`` keeps its table for ``candidates`` (cheapest first): three or
    more each have their own file beside the one of a pair (``calibration.json``), since a
    checkpoint serves routers of several candidate lists at once."""
    if len(candidates or ()) <= 2:
        return directory / CALIBRATION_FILE
    digest = hashlib.sha256("\n".join(candidates).encode()).hexdigest()[:12]
    return directory / f"calibration-{len(candidates)}-candidates-{digest}.json"


def calibration_files(directory: Path) -> list[Path]:
    """Every table a checkpoint keeps, its pair's first."""
    return sorted(directory.glob("calibration*.json"), key=lambda p: (p.name != CALIBRATION_FILE, p.name))


def save_calibration(directory: Path, table: CalibrationTable) -> Path:
    path = calibration_path(directory, table.candidates)
    path.write_text(table.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path


def load_calibration(directory: Path, candidates: Sequence[str] | None = None) -> CalibrationTable | None:
    path = calibration_path(directory, candidates)
    return read_calibration(path) if path.is_file() else None


def read_calibration(path: Path) -> CalibrationTable:
    try:
        return CalibrationTable.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValidationError, json.JSONDecodeError) as exc:
        raise CalibrationError(f"{path}: not a calibration table: {exc}") from None


def table_for(router: str, kind: str, directory: Path, candidates: Sequence[str] | None) -> CalibrationTable | str:
    """The calibration table in checkpoint ``directory`` that router ``router`` (of ``kind``)
    can serve with, or why there is none: none saved, or one measured for other ``candidates``
    (the models a router that scores models by name scores, cheapest first; None for one that
    scores its own pair)."""
    ladder = list(candidates) if candidates and len(candidates) > 2 else None
    table = load_calibration(directory, ladder)
    if ladder and table is None:
        return (
            f"router '{router}' chooses among {', '.join(ladder)}, and its checkpoint has no calibration "
            f"table for them: run 'routellm-serve calibrate --router {kind}={directory} --candidates "
            f"{','.join(ladder)} --save'"
        )
    hint = f"run 'routellm-serve calibrate --router {kind}={directory} --save'"
    if table is None:
        return f"router '{router}' has no calibration table ({directory / CALIBRATION_FILE}): {hint}"
    if not ladder and candidates and list(candidates) != table.candidates:
        weak, strong = candidates
        measured = " against ".join(reversed(table.candidates)) if table.candidates else "no named pair"
        return f"router '{router}' scores {strong} against {weak}, but its calibration table is for {measured}: {hint}"
    return table
