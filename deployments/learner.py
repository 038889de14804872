"""The learner on the cluster: one replica, no HTTP route, its own small CPU share at a low
priority, running :class:`~routing.offline.learning.learner.Learner` rounds as they fall due.

A round runs in a thread of this replica's process, never on a serving replica. The version in
service (the learner's promotions, and an operator's ``promote`` or ``rollback``) is recorded in
the learner's directory, which only this replica reads; it publishes that version, checkpoint
files included, to its router's replicas, each of which waits on :meth:`Learner.learned_version`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

import torch
from ray import serve
from ray.serve.metrics import Counter, Gauge

from routing.config import AppConfig
from routing.offline.learning.learner import Learner as LearningRounds
from routing.offline.learning.shadow import OPEN
from routing.offline.learning.store import LearnerStatus, LearnerStore
from routing.serving.learned_version import LearnedVersion

logger = logging.getLogger("ray.serve")
PUBLISH_CHECK_S = 1.0  # how soon an operator's promote or rollback reaches the Router replicas


class LearnerMetrics:
    def __init__(self) -> None:
        self.labels = Gauge("routellm_learner_labels", "Own labels collected, by split.", tag_keys=("router", "split"))
        self.spent = Gauge("routellm_learner_spent_usd", "Labelling spend today (UTC), in USD.", tag_keys=("router",))
        self.budget = Gauge("routellm_learner_budget_usd", "Labelling budget per day, in USD.", tag_keys=("router",))
        self.apgr = Gauge(
            "routellm_learner_apgr",
            "APGR on the test slice at the last evaluation, of the champion and the challenger.",
            tag_keys=("router", "role"),
        )
        self.version = Gauge("routellm_learner_champion_version", "Version in service.", tag_keys=("router",))
        self.promotions = Gauge("routellm_learner_promotions", "Promotions so far.", tag_keys=("router",))
        self.rollbacks = Gauge("routellm_learner_rollbacks", "Rollbacks so far.", tag_keys=("router",))
        self.since = Gauge(
            "routellm_learner_seconds_since_promotion", "Time since the champion took over.", tag_keys=("router",)
        )
        self.rounds = Counter("routellm_learner_rounds", "Rounds run, by outcome.", tag_keys=("router", "outcome"))
        self.judged = Gauge(
            "routellm_shadow_judged", "Shadowed requests the judge gave a verdict on.", tag_keys=("router", "key")
        )
        self.as_good = Gauge(
            "routellm_shadow_as_good_share",
            "Share of the shadowed requests whose cheaper answer the judge found as good as the most capable's.",
            tag_keys=("router", "key"),
        )

    def show(self, status: LearnerStatus) -> None:
        router = {"router": status.router}
        self.labels.set(status.train_labels, {**router, "split": "train"})
        self.labels.set(status.test_labels, {**router, "split": "test"})
        self.spent.set(status.spent_today_usd, router)
        self.budget.set(status.budget_usd_per_day, router)
        self.version.set(status.champion_version, router)
        self.promotions.set(status.promotions, router)
        self.rollbacks.set(status.rollbacks, router)
        if status.champion_since:
            self.since.set(time.time() - status.champion_since, router)
        if status.shadow is not None:
            for key, measured in status.shadow.by_key.items():
                tags = {**router, "key": "open" if key == OPEN else key}  # as the cost metrics name it
                self.judged.set(measured.judged, tags)
                if measured.share is not None:
                    self.as_good.set(measured.share, tags)
        evaluation = status.last_evaluation
        if evaluation is not None:
            for role, measured in (("champion", evaluation.champion), ("challenger", evaluation.challenger)):
                if measured.apgr is not None:
                    self.apgr.set(measured.apgr, {**router, "role": role})


def published(store: LearnerStore) -> LearnedVersion:
    """The version in service, as the Router replicas receive it."""
    champion = store.champion()
    directory = None if champion.version == 0 else Path(store.checkpoint_of(champion.version))
    return LearnedVersion.of_directory(store.router, champion.version, champion.since, champion.by, directory)


# Each Router replica keeps one call waiting here (see ``learned_version``), so the limit is far
# above the replica count; a short grace lets a shutdown end those waits instead of sitting them out.
@serve.deployment(
    num_replicas=1,
    ray_actor_options={"num_cpus": 0.1},
    max_ongoing_requests=1024,
    graceful_shutdown_timeout_s=2,
)
class Learner:
    async def __init__(self, config: AppConfig) -> None:
        assert config.learner is not None
        settings = config.learner
        os.nice(settings.niceness)  # the whole replica process: its rounds yield the cores to serving
        torch.set_num_threads(settings.torch_threads)
        self.rounds = LearningRounds(config, log=logger.info)
        self.metrics = LearnerMetrics()
        self.check_s = settings.check_s
        self._status: LearnerStatus | None = None
        self._published = self._first_published()
        self._seen = (self._published.version, self._published.since)
        self._changed = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run())
        self._publisher = loop.create_task(self._publish())

    async def _run(self) -> None:
        while True:
            try:
                if await asyncio.to_thread(self.rounds.due):
                    record = await asyncio.to_thread(self.rounds.run_round)
                    failed = record.outcome.startswith("failed")
                    self.metrics.rounds.inc(tags={"router": self.rounds.name, "outcome": "failed" if failed else "ok"})
                self._status = await asyncio.to_thread(self.rounds.status)
                self.metrics.show(self._status)
            except Exception:  # a broken disk or log costs this check, never the loop
                logger.exception("learner check failed")
            await asyncio.sleep(self.check_s)

    def _first_published(self) -> LearnedVersion:
        try:
            return published(self.rounds.store)
        except (OSError, ValueError):
            logger.exception("the recorded version cannot be sent: the replicas serve the configured checkpoint")
            return LearnedVersion(router=self.rounds.name, version=0, since=0.0, by="configured")

    async def _publish(self) -> None:
        """Publishes each change of the version in service, whoever made it (a round, or an
        operator's command on the learner's directory)."""
        while True:
            await asyncio.sleep(PUBLISH_CHECK_S)
            try:
                await self._publish_change()
            except Exception:  # a broken disk costs this check, never the loop
                logger.exception("learner publication check failed")

    async def _publish_change(self) -> None:
        champion = await asyncio.to_thread(self.rounds.store.champion)
        if (champion.version, champion.since) == self._seen:
            return
        self._seen = (champion.version, champion.since)
        try:
            self._published = await asyncio.to_thread(published, self.rounds.store)
        except (OSError, ValueError):
            logger.exception("version %d not sent, the replicas keep %d", champion.version, self._published.version)
            return
        logger.info("version %d in service (%s), sent to the replicas", self._published.version, self._published.by)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def learned_version(self, known: str | None, wait_s: float) -> LearnedVersion | None:
        """The version in service once its tag differs from ``known`` (the tag of the one the
        caller serves), waiting up to ``wait_s`` for a change; None when there was none."""
        if self._published.tag == known:
            try:
                await asyncio.wait_for(self._changed.wait(), wait_s)
            except TimeoutError:
                return None
        return self._published

    async def status(self) -> LearnerStatus | None:
        """The learner's last known state (None before its first check)."""
        return self._status
