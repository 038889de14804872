"""The learner: rounds of sample → label → retrain → evaluate → promote, from the request log.

A round is due once ``every_requests`` new requests are logged, or ``interval_s`` after the last
round when any are. It resumes what an interrupted round left (prompts sampled but not labelled,
a half-built version), never spends past the day's budget, and costs only itself when anything
fails: the serving replicas receive nothing but the version in service (``champion.json``,
rewritten whole on a promotion), which the Learner deployment sends them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from routing.config import AppConfig
from routing.offline.labelling.budget import Budget
from routing.offline.labelling.config import LabelConfig
from routing.offline.labelling.run import Labeller, Prompt
from routing.offline.learning.challenge import (
    Contender,
    calibrate_on,
    label_names,
    refit_challenger,
    train_challenger,
)
from routing.offline.learning.embedded import PromptEmbeddings
from routing.offline.learning.families import HeldOut, Labelled
from routing.offline.learning.own_labels import count_labelled, read_labelled
from routing.offline.learning.promotion import Decision, Scores, challenging_family, compare
from routing.offline.learning.refit import RefitError
from routing.offline.learning.sampling import LogCounter, choose, drawn_uniformly, recent_prompts, routed_prompts
from routing.offline.learning.shadow import SHADOW_LABELS, ShadowEvaluator, ShadowSettings
from routing.offline.learning.store import (
    Champion,
    Evaluation,
    FamilyScore,
    Interval,
    LearnerStatus,
    LearnerStore,
    RoundRecord,
    family_scores,
)
from routing.routers.kinds import KINDS
from routing.routers.scorer import calibration_of, inspect_checkpoint
from routing.serving.request_log import RequestRecord, read_request_log
from routing.settings import ConfigError

logger = logging.getLogger(__name__)
DAY_S = 86_400
NOTHING = Interval(apgr=None, low=None, high=None, strong_share=0.0)


@dataclass(frozen=True)
class _Counts:
    day: float
    train: int
    test: int
    spent_usd: float


@dataclass
class _Labelled:
    sampled: int
    labelled: int
    spent_usd: float
    spent_today_usd: float


class Learner:
    def __init__(self, app: AppConfig, log: Callable[[str], None] = logger.info) -> None:
        assert app.learner is not None and app.request_log is not None
        self.app = app
        self.config = app.learner
        self.log = log
        self.name = self.config.router
        self.router_config = app.routers[self.name]
        self.kind = KINDS.of(self.router_config)
        self.candidates = app.candidates(self.name)
        # What is labelled and learned: the two ends of the candidates (the most capable, the
        # cheapest), by the names the router scores them by.
        self.ends = label_names(self.candidates)
        self.store = LearnerStore(self.config.directory, self.name, self.router_config.checkpoint)
        self.request_log = Path(app.request_log.directory)
        self.counter = LogCounter(self.request_log, self.name)
        self.threshold = self._operating_threshold()
        rounds = list(self.store.rounds.read())
        self.round_number = rounds[-1].round if rounds else 0
        # Requests logged before a (re)start count as new: they have not been looked at since.
        self._logged_at_last_round = 0
        self._last_round_at = rounds[-1].started if rounds else time.time()
        self.embeddings = PromptEmbeddings(app.embedding if self.kind.needs_embeddings else None)
        self._counts: _Counts | None = None
        self.shadow = self._shadow_evaluator()

    def _shadow_evaluator(self) -> ShadowEvaluator | None:
        config = self.config
        if config.shadow is None:
            return None
        upstreams = self.app.upstreams
        cheaper = {upstreams[c.key].model: upstreams[c.key] for c in self.candidates[:-1]}
        settings = ShadowSettings(
            self.name, config.shadow.fraction, upstreams[self.candidates[-1].key], cheaper, config.judge,
            config.judge_prompts, config.answer_max_tokens, config.judge_max_tokens, config.concurrency,
        )  # fmt: skip
        return ShadowEvaluator(self.store.root, settings)

    def _operating_threshold(self) -> float:
        """learner.threshold, else the router's default threshold, else its calibration table's
        threshold for its default share (the checkpoint in the config: it has one, preflight checks)."""
        if self.config.threshold is not None:
            return self.config.threshold
        router = self.router_config
        if router.default_threshold is not None:
            return router.default_threshold
        inspected = inspect_checkpoint(router, self.candidates, self.app.embedding.model_id)
        table = calibration_of(self.name, self.kind, inspected)
        if isinstance(table, str):
            raise ConfigError(f"args.learner.threshold: none set, and {table}")
        return table.threshold(cast(float, router.strong_percent))

    # ------------------------------------------------------------ when

    def due(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        new = self.counter.count() - self._logged_at_last_round
        return new >= self.config.every_requests or (new > 0 and now - self._last_round_at >= self.config.interval_s)

    # ------------------------------------------------------------ a round

    def run_round(self) -> RoundRecord:
        """One round, start to end; a failure ends it with the reason recorded."""
        started = time.time()
        self._logged_at_last_round = self.counter.count()
        self._last_round_at = started
        self.round_number += 1
        self.embeddings.next_round()
        labelled = _Labelled(0, 0, 0.0, 0.0)
        shadowed = 0
        challenger: int | None = None
        promoted = False
        try:
            with self.store.locked():
                records = list(read_request_log(self.request_log))
                shadowed, shadow_spent = self._shadow(records)
                labelled = self._label(records)
                labelled.spent_usd += shadow_spent
                outcome, challenger, promoted = self._challenge()
        except Exception as exc:  # the round is lost, never the service: the next one starts afresh
            logger.exception("learner round %d failed", self.round_number)
            outcome = f"failed: {type(exc).__name__}: {exc}"
        record = RoundRecord(
            round=self.round_number,
            started=started,
            seconds=round(time.time() - started, 3),
            sampled=labelled.sampled,
            labelled=labelled.labelled,
            shadowed=shadowed,
            spent_usd=round(labelled.spent_usd, 6),
            spent_today_usd=round(labelled.spent_today_usd, 6),
            challenger=challenger,
            promoted=promoted,
            outcome=outcome,
        )
        self._counts = None
        try:
            self.store.rounds.append(record)
            self.store.rounds.close()
        except OSError:
            logger.exception("learner round %d not recorded", self.round_number)
        self.log(
            f"learner round {record.round} ({self.name}): shadowed {record.shadowed}, sampled {record.sampled}, "
            f"labelled {record.labelled}, "
            f"spent ${record.spent_usd:.4f} (today ${record.spent_today_usd:.4f} of "
            f"${self.config.budget_usd_per_day:g}), {record.outcome}, in {record.seconds:.1f} s"
        )
        return record

    def _labeller(self, budget: Budget | None) -> Labeller:
        strong, weak = self.ends
        upstreams = self.app.upstreams
        label_config = LabelConfig(
            upstreams={
                "strong": upstreams[self.candidates[-1].key].model_copy(update={"router_model_id": strong}),
                "weak": upstreams[self.candidates[0].key].model_copy(update={"router_model_id": weak}),
            },
            judge=self.config.judge,
            grading=[self.config.grading],
            prompts=self.config.judge_prompts,
            concurrency=self.config.concurrency,
            answer_max_tokens=self.config.answer_max_tokens,
            judge_max_tokens=self.config.judge_max_tokens,
            test_fraction=0.0,
        )
        return Labeller(label_config, self.store.labels, budget)

    def _spent_today(self, labeller: Labeller) -> float:
        day = time.time() // DAY_S * DAY_S
        return labeller.spent_usd(since=day) + (self.shadow.spent_usd(since=day) if self.shadow else 0.0)

    def _shadow(self, records: list[RequestRecord]) -> tuple[int, float]:
        """Shadows the requests logged since the last round (within what is left of the day's
        budget); its verdicts on the cheapest candidate's answers join the training labels."""
        if self.shadow is None:
            return 0, 0.0
        budget = Budget(self.config.budget_usd_per_day, self._spent_today(self._labeller(None)))
        before = budget.spent_usd
        added, failure = self.shadow.run(records, budget)
        if failure:
            self.log(f"learner: shadow evaluation stopped early ({failure})")
        strong, weak = self.ends
        cheapest = self.app.upstreams[self.candidates[0].key].model
        self.shadow.write_labels(
            self.store.labels / "train" / SHADOW_LABELS, strong, weak, cheapest, self.config.test_fraction
        )
        return added, budget.spent_usd - before

    def _label(self, records: list[RequestRecord]) -> _Labelled:
        sampled = {s.prompt_id: s for s in self.store.sampled.read()}
        labeller = self._labeller(None)
        unfinished = [s for s in sampled.values() if not labeller.done(Prompt(s.prompt_id, s.text))]
        wanted = max(self.config.labels_per_round - len(unfinished), 0)
        candidates = [c for c in routed_prompts(records, self.name) if c.prompt.id not in sampled]
        config = self.config
        new = choose(candidates, wanted, config.sampling, config.active_share, config.test_fraction, self.round_number)
        for entry in new:
            self.store.sampled.append(entry)
            sampled[entry.prompt_id] = entry
        self.store.sampled.close()

        spent_before = self._spent_today(labeller)
        # The journals read above know today's spend: the same labeller then spends within the rest.
        labeller.budget = Budget(config.budget_usd_per_day, spent_before)
        todo = [Prompt(s.prompt_id, s.text) for s in [*unfinished, *new]]
        done_before = sum(labeller.done(p) for p in todo)
        failures = asyncio.run(labeller.run(todo, lambda: None))
        prompts = [Prompt(s.prompt_id, s.text) for s in sampled.values()]
        labeller.write(prompts, lambda p: sampled[p.id].split)
        if failures:
            self.log(f"learner: {len(failures)} prompts not labelled this round ({sorted(set(failures.values()))[0]})")
        spent_today = self._spent_today(labeller)
        labelled = sum(labeller.done(p) for p in todo) - done_before
        return _Labelled(len(new), labelled, spent_today - spent_before, spent_today)

    def _challenge(self) -> tuple[str, int | None, bool]:
        train_dir, test_dir = self.store.labels / "train", self.store.labels / "test"
        train = self._labelled(train_dir)
        if train is None:
            return "no training labels yet", None, False
        test = self._labelled(test_dir)
        counts = (len(train.prompts), len(test.prompts) if test is not None else 0)
        newest = self.store.versions()[-1].evaluation
        if newest is not None and (newest.train_labels, newest.test_labels) == counts:
            return "no new labels: no challenger", None, False
        number, partial = self.store.partial_version()
        champion = self.store.champion()
        serving = self._contender(champion.checkpoint)
        config = self.config
        family: str | None = None
        families: list[FamilyScore] = []
        held_out: tuple[HeldOut, ...] = ()
        drawable: np.ndarray | None = None  # the training labels the cross-fitted draws may take
        if config.method == "refit":
            try:
                job, refit = refit_challenger(
                    serving, champion.checkpoint, train, config.families, config.folds, self.round_number
                )
            except RefitError as exc:
                return f"no challenger: {exc}", None, False
            family, families, why = challenging_family(refit, test)
            self.log(
                f"learner round {self.round_number} ({self.name}) families, APGR cross-validated / on the "
                f"test slice: {family_scores(families, family)}"
            )
            refit.save(family, job, partial)
            held_out = refit.held_out(family)
            drawable = ~job.champion_saw & drawn_uniformly(self.store.sampled.read(), train.prompts)
            family_note = (
                f"challenger {family}, chosen by cross-validation of {', '.join(config.families)}{why}{refit.note}"
            )
        else:
            train_challenger(
                self.router_config, self.candidates, partial, train_dir, config.data, config.label_weight,
                config.train, self.round_number, _training_log,
            )  # fmt: skip
            family_note = "challenger retrained"
        challenger = self._contender(str(partial))
        recent = recent_prompts(self.request_log, self.name, self.config.calibration_prompts)
        if self.kind.calibrated and recent:
            calibrate_on(challenger, self.kind.name, recent, self.embeddings(recent), partial)
        evaluation = self._evaluate(champion, serving, challenger, train, test, held_out, drawable)
        evaluation = evaluation.model_copy(
            update={"family": family, "families": families, "reason": f"{evaluation.reason}; {family_note}"}
        )
        promote = evaluation.promoted and self.config.promotion == "auto"
        self.store.commit_version(number, partial, evaluation.model_copy(update={"promoted": promote}))
        if promote:
            self.store.set_champion(number, "promotion")
        self.store.prune(self.config.keep_versions)
        return evaluation.reason, number, promote

    def _scorer(self, contender: Contender) -> Scores:
        needs = self.kind.needs_embeddings

        def scores(data: Labelled) -> np.ndarray:
            return contender.scores(data.prompts, data.embeddings if needs else None)

        return scores

    def _contender(self, checkpoint: str) -> Contender:
        return Contender.load(self.router_config, checkpoint, self.candidates, self.app.embedding.model_id)

    def _labelled(self, directory: Path) -> Labelled | None:
        strong, weak = self.ends
        return read_labelled(directory, strong, weak, self.config.grading, self.embeddings)

    def _evaluate(
        self,
        serving: Champion,
        champion: Contender,
        challenger: Contender,
        train: Labelled,
        test: Labelled | None,
        held_out: Sequence[HeldOut],
        drawable: np.ndarray | None,
    ) -> Evaluation:
        ours = theirs = NOTHING
        length, chance = None, None
        decision = Decision(False, "no test labels yet")
        if test is not None:
            compared = compare(
                self.config, self._scorer(champion), self._scorer(challenger), train, test, held_out,
                self.threshold, self.round_number, drawable,
            )  # fmt: skip
            ours, theirs, length, chance = compared.champion, compared.challenger, compared.length, compared.p_better
            decision = compared.decision
        return Evaluation(
            round=self.round_number,
            time=time.time(),
            train_labels=len(train.prompts),
            test_labels=len(test.prompts) if test is not None else 0,
            threshold=self.threshold,
            champion_version=serving.version,
            champion=ours,
            challenger=theirs,
            length=length,
            p_better=chance,
            promoted=decision.promoted,
            reason=decision.reason,
        )

    # ------------------------------------------------------------ what it has done

    def _counted(self) -> _Counts:
        """The label counts and the day's spend, read from the labels and the journal once per
        round (they change only in rounds), not at every look at the status."""
        day = time.time() // DAY_S * DAY_S
        if self._counts is None or self._counts.day != day:
            strong, weak = self.ends
            self._counts = _Counts(
                day=day,
                train=count_labelled(self.store.labels / "train", strong, weak),
                test=count_labelled(self.store.labels / "test", strong, weak),
                spent_usd=self._spent_today(self._labeller(None)),
            )
        return self._counts

    def status(self) -> LearnerStatus:
        rounds = list(self.store.rounds.read())
        history = list(self.store.history.read())
        champion = self.store.champion()
        evaluations = [v.evaluation for v in self.store.versions() if v.evaluation is not None]
        counts = self._counted()
        return LearnerStatus(
            router=self.name,
            rounds=len(rounds),
            train_labels=counts.train,
            test_labels=counts.test,
            spent_today_usd=round(counts.spent_usd, 6),
            budget_usd_per_day=self.config.budget_usd_per_day,
            champion_version=champion.version,
            champion_since=champion.since,
            promotions=sum(h.by != "rollback" for h in history),
            rollbacks=sum(h.by == "rollback" for h in history),
            last_round=rounds[-1] if rounds else None,
            last_evaluation=max(evaluations, key=lambda e: e.time) if evaluations else None,
            shadow=self.shadow.summary() if self.shadow is not None else None,
        )


def _training_log(line: str) -> None:
    logger.debug("learner training: %s", line)
