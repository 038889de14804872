"""Gauges that stay exported while nothing changes them."""

from __future__ import annotations

import asyncio

# Ray drops a gauge series that has not been set for two export intervals (20 s by default), so
# the gauges are set again this often even when no request comes.
REFRESH_S = 5.0


class KeptFresh:
    """A holder of gauges: :meth:`publish` sets them (through :meth:`set_gauges`) now and every
    :data:`REFRESH_S` after, from the replica's event loop."""

    _refresher: asyncio.Task[None] | None = None

    def set_gauges(self) -> None:
        raise NotImplementedError

    def publish(self) -> None:
        self.set_gauges()
        if self._refresher is None:
            self._refresher = asyncio.get_running_loop().create_task(self._keep_fresh())

    async def _keep_fresh(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            self.set_gauges()
