"""The learner's state directory for one router, which survives restarts::

    <directory>/<router>/
        champion.json      the version in service (the Learner deployment sends it to the Router replicas)
        configured.json    version 0: the checkpoint the application configures
        history.ndjson     every change of champion (promotions, rollbacks), oldest first
        sampled.ndjson     every prompt sampled for labelling, with its split and why it was chosen
        rounds.ndjson      one record per round
        labels/            the labelling run: journal of answers and verdicts, train/ and test/
        versions/<n>/      challenger n: its checkpoint, calibration table and evaluation.json

Version 0 is the configured checkpoint. Writes are whole-file replacements or appended, synced
lines, and a lock file keeps a round and an operator's rollback from interleaving.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from routing.offline.labelling.journal import Journal, write_atomically

CHAMPION_FILE = "champion.json"
CONFIGURED_FILE = "configured.json"
EVALUATION_FILE = "evaluation.json"
PARTIAL_PREFIX = ".partial-"


class LearnerStateError(ValueError):
    """The state directory lacks what an operation needs (a version, a champion to roll back)."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Champion(_Record):
    version: int = Field(ge=0)
    checkpoint: str = Field(description="the checkpoint directory (version 0: as configured, e.g. builtin:mf)")
    since: float
    by: Literal["promotion", "manual promotion", "rollback"]


class Sampled(_Record):
    prompt_id: str
    text: str
    round: int
    split: Literal["train", "test"]
    reason: Literal["active", "uniform", "uniform-test"]


class Interval(_Record):
    apgr: float | None
    low: float | None
    high: float | None
    strong_share: float


class FamilyScore(_Record):
    """A challenger family's APGR cross-validated on the round's training labels, and on the test slice."""

    family: str
    cv_apgr: float | None
    test_apgr: float | None = None


def family_scores(families: list[FamilyScore], chosen: str | None) -> str:
    """``length 0.612 / 0.580, linear* 0.640 / 0.655, …``: each family's cross-validated and test APGR."""

    def number(value: float | None) -> str:
        return "–" if value is None else f"{value:.3f}"

    marked = [
        f"{f.family}{'*' if f.family == chosen else ''} {number(f.cv_apgr)} / {number(f.test_apgr)}" for f in families
    ]
    return ", ".join(marked)


class Evaluation(_Record):
    """Challenger against champion on the test slice of the own labels: each one's APGR with its
    interval, and the share of paired bootstrap draws (of the slice, and by ``evidence`` of the
    cross-fitted training labels) in which the challenger is the better (``p_better``); the
    families tried, and the one that challenged."""

    round: int
    time: float
    train_labels: int
    test_labels: int
    threshold: float
    champion_version: int
    champion: Interval
    challenger: Interval
    promoted: bool
    reason: str
    p_better: float | None = None
    family: str | None = None
    families: list[FamilyScore] = Field(default_factory=list)
    length: Interval | None = None


class RoundRecord(_Record):
    round: int
    started: float
    seconds: float
    sampled: int = 0
    labelled: int = 0
    shadowed: int = 0
    spent_usd: float = 0.0
    spent_today_usd: float = 0.0
    challenger: int | None = None
    promoted: bool = False
    outcome: str


class Version(_Record):
    number: int
    checkpoint: str
    evaluation: Evaluation | None


def read_champion(path: Path) -> Champion | None:
    """The champion recorded at ``path``; None when none is (or the file is unreadable)."""
    try:
        return Champion.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError):
        return None


class Configured(_Record):
    checkpoint: str


class LearnerStore:
    """One router's state. The learner names the configured checkpoint (version 0) and the store
    records it, so that an operator's command needs only the directory."""

    def __init__(self, directory: str | Path, router: str, configured_checkpoint: str | None = None) -> None:
        self.root = Path(directory) / router
        self.router = router
        path = self.root / CONFIGURED_FILE
        if configured_checkpoint is None:
            if not path.is_file():
                raise LearnerStateError(f"{self.root}: no learner state for router '{router}'")
            configured_checkpoint = Configured.model_validate_json(path.read_text(encoding="utf-8")).checkpoint
        elif not path.is_file() or Configured.model_validate_json(path.read_text()).checkpoint != configured_checkpoint:
            write_atomically(path, Configured(checkpoint=configured_checkpoint).model_dump_json() + "\n")
        self.configured_checkpoint = configured_checkpoint
        self.labels = self.root / "labels"
        self.versions_dir = self.root / "versions"
        self.sampled = Journal(self.root / "sampled.ndjson", Sampled)
        self.rounds = Journal(self.root / "rounds.ndjson", RoundRecord)
        self.history = Journal(self.root / "history.ndjson", Champion)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / "lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def champion(self) -> Champion:
        recorded = read_champion(self.root / CHAMPION_FILE)
        return recorded or Champion(version=0, checkpoint=self.configured_checkpoint, since=0.0, by="promotion")

    def set_champion(self, version: int, by: Literal["promotion", "manual promotion", "rollback"]) -> Champion:
        champion = Champion(version=version, checkpoint=self.checkpoint_of(version), since=time.time(), by=by)
        write_atomically(self.root / CHAMPION_FILE, champion.model_dump_json() + "\n")
        self.history.append(champion)
        self.history.close()
        return champion

    def checkpoint_of(self, version: int) -> str:
        if version == 0:
            return self.configured_checkpoint
        path = self.versions_dir / str(version)
        if not path.is_dir():
            kept = ", ".join(str(v.number) for v in self.versions())
            raise LearnerStateError(f"router '{self.router}' has no version {version} (kept: {kept})")
        return str(path.resolve())

    def versions(self) -> list[Version]:
        """Version 0 and every kept challenger, oldest first."""
        found = [Version(number=0, checkpoint=self.configured_checkpoint, evaluation=None)]
        if self.versions_dir.is_dir():
            numbers = sorted(int(p.name) for p in self.versions_dir.iterdir() if p.name.isdigit())
            found += [
                Version(number=n, checkpoint=self.checkpoint_of(n), evaluation=self.evaluation(n)) for n in numbers
            ]
        return found

    def evaluation(self, version: int) -> Evaluation | None:
        path = self.versions_dir / str(version) / EVALUATION_FILE
        try:
            return Evaluation.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return None

    def partial_version(self) -> tuple[int, Path]:
        """The next version's number and a fresh directory to build it in (moved into place by
        :meth:`commit_version`); what a crash left half-built is removed first."""
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        for leftover in self.versions_dir.glob(PARTIAL_PREFIX + "*"):
            shutil.rmtree(leftover, ignore_errors=True)
        number = max((v.number for v in self.versions()), default=0) + 1
        return number, self.versions_dir / f"{PARTIAL_PREFIX}{number}"

    def commit_version(self, number: int, partial: Path, evaluation: Evaluation) -> None:
        write_atomically(partial / EVALUATION_FILE, evaluation.model_dump_json(indent=2) + "\n")
        os.replace(partial, self.versions_dir / str(number))

    def prune(self, keep: int) -> list[int]:
        """Removes all but the ``keep`` newest challengers, never the champion or the one before it."""
        spared = {self.champion().version, self.previous_champion()}
        challengers = [v.number for v in self.versions() if v.number > 0]
        removed = [n for n in challengers[: max(len(challengers) - keep, 0)] if n not in spared]
        for number in removed:
            shutil.rmtree(self.versions_dir / str(number), ignore_errors=True)
        return removed

    def previous_champion(self) -> int:
        """The version that served before the current champion (0 when there was none)."""
        current = self.champion().version
        for record in reversed(list(self.history.read())[:-1]):
            if record.version != current:
                return record.version
        return 0

    def rollback(self, version: int | None = None) -> Champion:
        """Back to ``version`` (default: the champion before the current one)."""
        target = self.previous_champion() if version is None else version
        if target == self.champion().version:
            raise LearnerStateError(f"version {target} of router '{self.router}' is already in service")
        return self.set_champion(target, "rollback")

    def promote(self, version: int | None = None) -> Champion:
        """Puts ``version`` (default: the newest challenger) in service, as an operator does."""
        challengers = [v.number for v in self.versions() if v.number > 0]
        if version is None and not challengers:
            raise LearnerStateError(f"router '{self.router}' has no challenger to promote")
        return self.set_champion(challengers[-1] if version is None else version, "manual promotion")


class AsGood(BaseModel):
    """Of ``judged`` shadowed requests, the share whose cheaper answer the judge found as good,
    with a 95 % Wilson interval."""

    judged: int
    as_good: int
    share: float | None
    low: float | None
    high: float | None


class ShadowSummary(BaseModel):
    fraction: float
    verdicts: int
    by_router: dict[str, AsGood]
    by_key: dict[str, AsGood]


class LearnerStatus(BaseModel):
    """What the learner has done, for its metrics and ``GET /health/learner``."""

    router: str
    rounds: int
    train_labels: int
    test_labels: int
    spent_today_usd: float
    budget_usd_per_day: float
    champion_version: int
    champion_since: float
    promotions: int
    rollbacks: int
    last_round: RoundRecord | None
    last_evaluation: Evaluation | None
    shadow: ShadowSummary | None = None
