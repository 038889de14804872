"""The ``learner:`` section of the application config: a router that keeps learning its own
traffic. Off unless configured; see :mod:`routing.offline.learning.learner` for what a round does."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from routing.judge_settings import Grading, JudgePrompts, JudgeUpstream
from routing.settings import Strict

Sampling = Literal["active", "uniform"]
Family = Literal["length", "linear", "neighbours", "champion"]
FAMILIES: tuple[Family, ...] = ("length", "linear", "neighbours", "champion")


class ShadowConfig(Strict):
    """Shadow evaluation (:mod:`routing.offline.learning.shadow`): a share of the requests the
    router sent to a cheaper candidate is asked again of the most capable one, and the judge
    says whether the cheaper answer was as good, within the learner's budget."""

    fraction: float = Field(
        gt=0, le=1, description="share of the requests a cheaper candidate answered that are shadowed"
    )


class LearnerConfig(Strict):
    """Every ``interval_s``, or every ``every_requests`` new logged requests, a round samples
    prompts from the request log, labels them with ``judge`` within ``budget_usd_per_day``,
    trains challengers, evaluates the best against the champion on a test slice of the labels
    that is never trained on, and promotes it when it is the better in at least ``confidence``
    of the paired bootstrap draws of that slice (with ``evidence: cross_fitted``, and of the
    uniformly drawn training labels, each scored by a fit that never saw it)."""

    router: str = Field(description="the entry of 'routers' that learns; its kind needs a trainer")
    directory: str = Field(
        min_length=1, description="the learner's state: labels, spend, versions (a mounted volume on Kubernetes)"
    )
    judge: JudgeUpstream
    grading: Grading = Field(default="pairwise", description="how the judge grades; its labels train and evaluate")
    judge_prompts: JudgePrompts = Field(default_factory=JudgePrompts)
    budget_usd_per_day: float = Field(
        ge=0, description="labelling spend (answers and verdicts) per UTC day, never exceeded; needs 'price's"
    )
    labels_per_round: int = Field(default=100, ge=1, le=100_000)
    every_requests: int = Field(default=1000, ge=1, description="new logged requests that start a round")
    interval_s: float = Field(default=3600.0, gt=0, description="longest wait between rounds while traffic is new")
    check_s: float = Field(default=10.0, gt=0, description="how often the learner looks whether a round is due")
    sampling: Sampling = Field(
        default="active",
        description="active: a share near the operating threshold, where a label changes a decision; "
        "uniform: every prompt alike",
    )
    active_share: float = Field(default=0.5, ge=0, le=1, description="share of an active round's sample")
    test_fraction: float = Field(
        default=0.3, gt=0, lt=1, description="share of the uniformly sampled prompts kept as the test slice"
    )
    threshold: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="the operating threshold; default: the router's default_threshold, else its "
        "calibration table's threshold for its default share",
    )
    promotion: Literal["auto", "manual"] = Field(
        default="auto", description="manual: a better challenger waits for 'routellm-serve promote'"
    )
    confidence: float = Field(
        default=0.8,
        ge=0.5,
        lt=1,
        description="share of paired bootstrap draws (see 'evidence') in which the challenger's APGR "
        "must beat the champion's for a promotion",
    )
    evidence: Literal["test_slice", "cross_fitted"] = Field(
        default="cross_fitted",
        description="what the paired draws compare: the test slice alone, or with the training labels too "
        "(those drawn uniformly that the champion was not fit on), each scored by the challenger's family "
        "fit on the other folds (refit only)",
    )
    min_test_labels: int = Field(default=30, ge=2, description="test labels needed before any promotion")
    bootstrap: int = Field(
        default=500, ge=10, le=10_000, description="resamples of the APGR interval and of the paired comparison"
    )
    method: Literal["refit", "retrain"] = Field(
        default="refit",
        description="refit: challengers of every family in 'families' fit on the own labels, the best by "
        "cross-validation (kinds with a refit, e.g. mf); retrain: the kind's trainer on 'data' and the own labels",
    )
    families: list[Family] = Field(
        default_factory=lambda: list(FAMILIES),
        min_length=1,
        description="refit: the challenger families tried each round (length, linear, neighbours, champion)",
    )
    folds: int = Field(default=5, ge=2, le=20, description="refit: folds of the cross-validation that chooses a family")
    data: list[str] = Field(
        default_factory=list, description="retrain: training data mixed with the own labels (e.g. data/train)"
    )
    label_weight: float = Field(default=1.0, gt=0, description="retrain: how much an own label counts beside 'data'")
    train: dict[str, Any] = Field(default_factory=dict, description="retrain: the trainer's options, e.g. {epochs: 20}")
    calibration_prompts: int = Field(
        default=2000, ge=1, description="recent logged prompts a challenger's strong-share table is measured on"
    )
    keep_versions: int = Field(default=5, ge=1, description="versions kept, besides the champion")
    concurrency: int = Field(default=4, ge=1, le=256, description="prompts labelled at once")
    answer_max_tokens: int = Field(default=1024, ge=1)
    judge_max_tokens: int = Field(default=512, ge=1)
    shadow: ShadowConfig | None = Field(
        default=None, description="shadow evaluation of the cheaper candidates' answers; off unless set"
    )
    niceness: int = Field(default=10, ge=0, le=19, description="the learner process's CPU priority (nice)")
    torch_threads: int = Field(default=1, ge=1)

    @field_validator("data")
    @classmethod
    def _data_named(cls, value: list[str]) -> list[str]:
        if any(not ref.strip() for ref in value):
            raise ValueError("each entry names a file, a folder or a dataset id")
        return value
