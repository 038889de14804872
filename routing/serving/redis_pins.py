"""Pins in a Redis or Valkey server that every ingress replica shares: one key per router and
session, written with its expiry and given a new one on each use (``GETEX``), so a pin lasts
``ttl_s`` after its conversation's last request whichever replica served it."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from routing.serving.pins import Pin, PinStoreError
from routing.session_settings import SessionStore

PREFIX = "routellm:pin:"


class RedisPins:
    def __init__(self, config: SessionStore) -> None:
        assert config.url is not None
        self.ttl_s = max(1, round(config.ttl_s))
        # One more try on a new connection: what a restarted server leaves in the pool is dead.
        retry = Retry(NoBackoff(), retries=1)
        self.client = Redis.from_url(
            config.url, socket_timeout=config.timeout_s, socket_connect_timeout=config.timeout_s, retry=retry
        )

    async def get(self, router: str, session: str) -> Pin | None:
        try:
            raw = await self.client.getex(_key(router, session), ex=self.ttl_s)
        except (RedisError, OSError) as exc:
            raise PinStoreError(f"the session store did not answer: {type(exc).__name__}: {exc}") from None
        return None if raw is None else Pin.from_json(raw)

    async def put(self, router: str, session: str, pin: Pin) -> None:
        try:
            await self.client.set(_key(router, session), pin.to_json(), ex=self.ttl_s)
        except (RedisError, OSError) as exc:
            raise PinStoreError(f"the session store did not answer: {type(exc).__name__}: {exc}") from None

    def size(self) -> int | None:
        return None  # the server holds other replicas' pins too: its own metrics count them

    async def aclose(self) -> None:
        await self.client.aclose()


def _key(router: str, session: str) -> str:
    return f"{PREFIX}{router}:{session}"
