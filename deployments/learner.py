"""The learner on the cluster: one replica, no HTTP route, its own small CPU share at a low
priority, running :class:`~routing.offline.learning.learner.Learner` rounds as they fall due.

A round runs in a thread of this replica's process, never on a serving replica; the Router
replicas learn of a promotion from ``champion.json`` in the learner's directory.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

import torch
from ray import serve
from ray.serve.metrics import Counter, Gauge

from routing.config import AppConfig
from routing.offline.learning.learner import Learner as LearningRounds
from routing.offline.learning.learner import LearnerStatus

logger = logging.getLogger("ray.serve")


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
        evaluation = status.last_evaluation
        if evaluation is not None:
            for role, measured in (("champion", evaluation.champion), ("challenger", evaluation.challenger)):
                if measured.apgr is not None:
                    self.apgr.set(measured.apgr, {**router, "role": role})


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0.1}, max_ongoing_requests=4)
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
        self._task = asyncio.get_running_loop().create_task(self._run())

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

    async def status(self) -> LearnerStatus | None:
        """The learner's last known state (None before its first check)."""
        return self._status
