"""How a Router replica of a router that learns serves the learner's version: it asks the
Learner deployment through Serve, which answers when the version in service changes (or after a
while with nothing), and swaps each new version in through the same path as a ``user_config``
checkpoint. The files arrive with the answer and are written to this replica's own directory: no
file system is shared with the learner."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from ray.serve.handle import DeploymentHandle

from routing.serving.learned_version import LearnedVersion

logger = logging.getLogger("ray.serve")
WAIT_S = 10.0  # one wait on the learner; a change is answered at once
FIRST_WAIT_S = 60.0  # at start, before serving the configured checkpoint instead
RETRY_S = 2.0  # after the learner failed to answer (restarting, or gone)
CACHE_PREFIX = "routellm-learned-"


def _remove_left_behind(router: str) -> None:
    """Removes the copies of replicas whose process is gone (killed before it could clean up)."""
    for path in Path(tempfile.gettempdir()).glob(f"{CACHE_PREFIX}{router}-*-*"):
        pid = path.name.removeprefix(f"{CACHE_PREFIX}{router}-").split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class LearnedVersions:
    """Follows the learner's version of router ``router``; ``swap`` loads a checkpoint directory
    (or the configured one) into service and says whether it was taken."""

    def __init__(
        self, router: str, learner: DeploymentHandle, configured: str, swap: Callable[[str], Awaitable[bool]]
    ) -> None:
        self.router = router
        self.learner = learner
        self.configured = configured
        self.swap = swap
        _remove_left_behind(router)
        self.cache = Path(tempfile.mkdtemp(prefix=f"{CACHE_PREFIX}{router}-{os.getpid()}-"))
        self.known: str | None = None  # the tag of the last version taken or refused
        self._serving: Path | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Serves the version in service before the replica takes requests (the configured
        checkpoint when the learner does not answer in time), then follows its changes."""
        try:
            learned = await asyncio.wait_for(self._ask(0.0), FIRST_WAIT_S)
        except Exception as exc:
            logger.error("the learner did not answer (%s): serving the configured checkpoint until it does", exc)
        else:
            if learned is not None:
                await self._take(learned)
        self._task = asyncio.get_running_loop().create_task(self._follow())

    async def _follow(self) -> None:
        while True:
            try:
                learned = await self._ask(WAIT_S)
            except Exception as exc:  # the learner restarting: ask again
                logger.warning("the learner did not answer (%s): asking again in %s s", exc, RETRY_S)
                await asyncio.sleep(RETRY_S)
                continue
            if learned is not None:
                await self._take(learned)

    async def _ask(self, wait_s: float) -> LearnedVersion | None:
        return await self.learner.learned_version.remote(self.known, wait_s)

    async def _take(self, learned: LearnedVersion) -> None:
        """Swaps ``learned`` in; one refused stays refused (and shown) until the learner sends another."""
        self.known = learned.tag
        unpacked = None if learned.version == 0 else await asyncio.to_thread(learned.unpacked, self.cache)
        taken = await self.swap(self.configured if unpacked is None else str(unpacked))
        if taken:
            logger.info("router '%s' serves version %d (%s)", self.router, learned.version, learned.by)
            self._serving = unpacked
        for older in self.cache.iterdir():  # only the version in service is kept
            if self._serving is None or older != self._serving.parent:
                shutil.rmtree(older, ignore_errors=True)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        shutil.rmtree(self.cache, ignore_errors=True)
