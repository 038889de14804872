"""One configured router in service: the model of its live checkpoint and that checkpoint's
calibration table, held together and swapped together, and the one question the request path
asks it: in which order to try its candidates for a prompt.

The candidates are listed cheapest first, the most capable last; they are scored by the
checkpoint's :class:`~routing.routers.scorer.CandidateScorer` and chosen by the one routing rule
(:mod:`routing.routers.rule`)::

    P(as good as the most capable)   cheapest ── mid ── most capable
        t = 0.2 (need > 0.8)            0.55      0.85       1       → mid, then most capable, then cheapest
        t = 0.5 (need > 0.5)            0.55      0.85       1       → cheapest, then mid, then most capable

Every answer says which checkpoint gave it (:class:`RouterState`), so a caller never needs to
be told of a swap and never pairs a new model with an old table: a batch is scored, and its
strong shares turned into thresholds, by the one version it started with.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from routing.calibration import CALIBRATION_FILE, CalibrationError, CalibrationTable, calibration_files
from routing.errors import InvalidRequest
from routing.resources import MissingResource
from routing.routers.checkpoint import MANIFEST_FILE, CheckpointError
from routing.routers.kind import Candidate, RouterDefaults, RouterSettings
from routing.routers.kinds import KINDS
from routing.routers.rule import choose, try_order
from routing.routers.scorer import CandidateScorer, calibration_of
from routing.routers.share_settings import ShareControl
from routing.serving.share_control import LiveShares
from routing.settings import ConfigError


@dataclass(frozen=True)
class RankQuery:
    """A prompt to rank the candidates for, at a threshold, a calibrated strong share or a budget
    (USD per request, on the calibration pool's mean), as the alias asked; none of them: the
    router's default."""

    prompt: str
    embedding: np.ndarray | None = None
    threshold: float | None = None
    strong_percent: float | None = None
    budget_usd: float | None = None

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.threshold, self.strong_percent, self.budget_usd)) > 1:
            raise ValueError("a query asks for at most one of a threshold, a strong share and a budget")

    @property
    def asks_default(self) -> bool:
        return self.threshold is None and self.strong_percent is None and self.budget_usd is None


@dataclass(frozen=True)
class RouterState:
    """What a router serves with: its checkpoint (``<directory>@<content hash>``), why that
    checkpoint cannot turn strong shares into thresholds (None: it can), why the last swap was
    refused (None: it was not), the defaults ``router-<name>`` routes by, and why the Router's
    last ``user_config`` was refused (None: it was not)."""

    checkpoint: str
    calibration_error: str | None = None
    swap_error: str | None = None
    defaults: RouterDefaults = field(default_factory=RouterDefaults)
    user_config_error: str | None = None

    @property
    def calibrated(self) -> bool:
        return self.calibration_error is None


@dataclass(frozen=True)
class Ranking:
    """The candidates' upstream keys, first choice first, and how the router came to them:
    ``score`` is the lowest P(the most capable candidate wins) over the cheaper ones, so the
    most capable is chosen exactly when ``score >= threshold``; ``candidates`` holds each
    candidate's predicted probability of answering at least as well as the most capable one,
    cheapest first."""

    order: tuple[str, ...]
    score: float
    threshold: float
    strong_percent: float | None
    state: RouterState
    candidates: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class _Version:
    checkpoint: str
    scorer: CandidateScorer
    table: CalibrationTable | str
    state: RouterState


def checkpoint_id(directory: Path) -> str:
    """``<directory name>@<hash of its manifest and calibration tables>``: names a version without
    revealing where it is stored."""
    digest = hashlib.sha256()
    for name in (MANIFEST_FILE, CALIBRATION_FILE):
        path = directory / name
        digest.update(path.read_bytes() if path.is_file() else b"")
    for path in calibration_files(directory):  # the tables of candidate lists, by name
        if path.name != CALIBRATION_FILE:
            digest.update(path.name.encode() + path.read_bytes())
    return f"{directory.name}@{digest.hexdigest()[:12]}"


class LiveRouter:
    """A configured router in service: its candidates, and the version it serves (the model of
    its checkpoint and that checkpoint's calibration table), swapped whole."""

    def __init__(
        self, name: str, config: RouterSettings, candidates: Sequence[Candidate], embedding_model_id: str
    ) -> None:
        self.name = name
        self.config = config
        self.kind = KINDS.of(config)
        self.candidates = tuple(candidates)
        self.embedding_model_id = embedding_model_id
        self._version = self._load(config.checkpoint, "args.routers." + name)
        self._shares = self._live_shares()
        self.configured_defaults = RouterDefaults(**config.model_dump(include=set(RouterDefaults.model_fields)))
        self.defaults = self.configured_defaults
        self._user_config_error: str | None = None

    def _live_shares(self) -> LiveShares | None:
        control = self.config.share_control
        return LiveShares(control) if isinstance(control, ShareControl) and self.kind.calibrated else None

    @property
    def checkpoint(self) -> str:
        """The checkpoint in service, as configured or swapped in (``builtin:<name>`` or a directory)."""
        return self._version.checkpoint

    @property
    def scorer(self) -> CandidateScorer:
        return self._version.scorer

    @property
    def state(self) -> RouterState:
        return replace(self._version.state, defaults=self.defaults, user_config_error=self._user_config_error)

    def set_defaults(self, defaults: RouterDefaults) -> None:
        """What ``router-<name>`` routes by from now on. A default share is refused (raised as
        :class:`ConfigError`) while the checkpoint in service has no table to hold it with; the
        current defaults stay."""
        table = self._version.table
        if defaults.strong_percent is not None and isinstance(table, str):
            raise ConfigError(f"default_strong_percent: {table}")
        self.defaults = defaults

    def refused(self, reason: str | None) -> None:
        """Why the Router's last ``user_config`` was refused (None: it was taken), for its state."""
        self._user_config_error = reason

    def _load(self, checkpoint: str, where: str) -> _Version:
        config = self.config.model_copy(update={"checkpoint": checkpoint})
        try:
            scorer = CandidateScorer.load(config, self.candidates, self.embedding_model_id)
        except (MissingResource, CheckpointError) as exc:
            raise CheckpointError(f"{where}: {exc}") from None
        table = calibration_of(self.name, self.kind, scorer.inspected)
        state = RouterState(checkpoint_id(scorer.inspected.directory), table if isinstance(table, str) else None)
        return _Version(checkpoint, scorer, table, state)

    def swap_to(self, checkpoint: str) -> bool:
        """Loads ``checkpoint`` beside the one in service, then swaps its model and table in at
        once; False when it is already in service. One that cannot serve is refused (raised):
        the one in service serves on, and its answers carry the refusal until the next swap."""
        if checkpoint == self._version.checkpoint:
            if self._version.state.swap_error is not None:
                self._version = replace(self._version, state=replace(self._version.state, swap_error=None))
            return False
        try:
            version = self._load(checkpoint, "user_config.checkpoint")
        except Exception as exc:
            refused = replace(self._version.state, swap_error=f"checkpoint {checkpoint} refused: {exc}")
            self._version = replace(self._version, state=refused)
            raise
        self._version = version
        self._shares = self._live_shares()  # the old model's scores say nothing of the new one's
        return True

    def rank(self, queries: Sequence[RankQuery]) -> list[Ranking | InvalidRequest]:
        """Per query, the candidates in the order to try them, or why the query cannot be
        answered (a strong share without a table). The whole batch uses one version."""
        version = self._version
        embeddings = np.stack([q.embedding for q in queries]) if self.kind.needs_embeddings else None  # type: ignore[misc]
        scores = version.scorer.beaten([q.prompt for q in queries], embeddings)
        shares, top = self._shares, self.candidates[-1].key
        rankings = []
        for asked, row in zip(queries, scores, strict=True):
            query = self._resolved(asked)
            percent = query.strong_percent
            if shares is None or percent is None:
                rankings.append(self._ranking(version, query, row))
                continue
            ranking = self._ranking(version, query, row, shares.threshold(percent), shares.aimed(percent))
            if isinstance(ranking, Ranking):
                shares.decided(percent, ranking.order[0] == top)
            rankings.append(ranking)
        if shares is not None:
            shares.add_scores(scores.min(axis=1))
        return rankings

    def _resolved(self, query: RankQuery) -> RankQuery:
        """The query as asked, or at the router's default where it asked none."""
        if not query.asks_default:
            return query
        percent = self.defaults.strong_percent
        if percent is None:
            return replace(query, threshold=self.defaults.default_threshold)
        return replace(query, strong_percent=percent)

    def _ranking(
        self,
        version: _Version,
        query: RankQuery,
        beaten: np.ndarray,
        live: float | None = None,
        aimed: float | None = None,
    ) -> Ranking | InvalidRequest:
        """``beaten[i]``: P(the most capable candidate wins over candidate i), cheapest first.
        The cheapest candidate with ``beaten[i] < threshold`` (predicted to answer at least as
        well as the most capable one with probability above 1 − threshold) is tried first, then
        the more capable ones in turn, then the cheaper ones; none: the most capable first.
        ``live``: share control's threshold; ``aimed``: the share it routes a share query at,
        which the table's threshold is taken for until ``live`` is known."""
        threshold = query.threshold if live is None else live
        if threshold is None:
            if isinstance(version.table, str):
                return InvalidRequest(version.table, param="model", code="no_calibration")
            if query.strong_percent is not None:
                threshold = version.table.threshold(query.strong_percent if aimed is None else aimed)
            else:
                assert query.budget_usd is not None
                found = self._budget_threshold(version.table, query.budget_usd)
                if isinstance(found, InvalidRequest):
                    return found
                threshold = found
        keys = [c.key for c in self.candidates]
        order = try_order(keys, int(choose(beaten.reshape(1, -1), threshold)[0]))
        as_good = tuple(zip(keys, [*(1.0 - float(p) for p in beaten), 1.0], strict=True))
        return Ranking(order, float(beaten.min()), threshold, query.strong_percent, version.state, as_good)

    def _budget_threshold(self, table: CalibrationTable, usd: float) -> float | InvalidRequest:
        unpriced = [c.key for c in self.candidates if c.price is None]
        if unpriced:
            return InvalidRequest(
                f"router '{self.name}' prices a budget from its candidates' prices, and "
                f"{', '.join(f'upstreams.{key}.price' for key in unpriced)} is not set",
                param="model",
                code="no_prices",
            )
        prices = [c.price for c in self.candidates if c.price]
        try:
            return table.budget_threshold(usd, prices)
        except CalibrationError as exc:
            code = "no_calibration" if table.costs is None else "budget_too_low"
            return InvalidRequest(f"router '{self.name}': {exc}", param="model", code=code)
