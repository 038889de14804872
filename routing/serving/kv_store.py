"""Short-lived values under keys (conversations' pins, stored responses): in this process for one
ingress replica, or in a Redis or Valkey server that every ingress replica shares. A value lasts
``ttl_s`` after its last read or write (``GETEX`` renews it on the server), so a conversation's
state lives as long as the conversation does, whichever replica serves it."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from routing.session_settings import SessionStore
from routing.settings import ConfigError

PREFIX = "routellm:"


class StoreError(RuntimeError):
    """The store failed or did not answer in time: what it holds is lost for this request, never the request."""


class KeyValues(Protocol):
    async def get(self, key: str) -> str | None:
        """The value (its expiry renewed), or None when there is none or it expired."""
        ...

    async def put(self, key: str, value: str) -> None: ...

    def size(self) -> int | None:
        """Values held (None: the store does not say)."""
        ...


class MemoryKeyValues:
    """Values in this process, the least recently used dropped first once there are more than
    ``max_entries`` or their text is longer than ``max_chars`` in all."""

    def __init__(
        self,
        ttl_s: float,
        max_entries: int | None = None,
        max_chars: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.max_chars = max_chars
        self._clock = clock
        self._values: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._chars = 0

    async def get(self, key: str) -> str | None:
        entry = self._values.get(key)
        if entry is None:
            return None
        expires, value = entry
        now = self._clock()
        if expires <= now:
            self._drop(key)
            return None
        self._values[key] = (now + self.ttl_s, value)
        self._values.move_to_end(key)
        return value

    async def put(self, key: str, value: str) -> None:
        if key in self._values:
            self._drop(key)
        self._values[key] = (self._clock() + self.ttl_s, value)
        self._chars += len(value)
        while self._values and self._over():
            self._drop(next(iter(self._values)))

    def size(self) -> int | None:
        return len(self._values)

    def clear(self) -> None:
        self._values.clear()
        self._chars = 0

    def _over(self) -> bool:
        too_many = self.max_entries is not None and len(self._values) > self.max_entries
        return too_many or (self.max_chars is not None and self._chars > self.max_chars)

    def _drop(self, key: str) -> None:
        _, value = self._values.pop(key)
        self._chars -= len(value)


class RedisKeyValues:
    """Values under ``routellm:<kind>:`` keys of a shared server, each written with its expiry."""

    def __init__(self, client: Redis, kind: str, ttl_s: float) -> None:
        self.client = client
        self.prefix = f"{PREFIX}{kind}:"
        self.ttl_s = max(1, round(ttl_s))

    async def get(self, key: str) -> str | None:
        try:
            raw = await self.client.getex(self.prefix + key, ex=self.ttl_s)
        except (RedisError, OSError) as exc:
            raise _unanswered(exc) from None
        return None if raw is None else raw.decode()

    async def put(self, key: str, value: str) -> None:
        try:
            await self.client.set(self.prefix + key, value, ex=self.ttl_s)
        except (RedisError, OSError) as exc:
            raise _unanswered(exc) from None

    def size(self) -> int | None:
        return None  # the server holds other replicas' values too: its own metrics count them


def _unanswered(exc: Exception) -> StoreError:
    return StoreError(f"the session store did not answer: {type(exc).__name__}: {exc}")


@dataclass
class Stores:
    """The session store's two kinds of values, and the connection they share (if any)."""

    pins: KeyValues
    responses: KeyValues
    client: Redis | None = None

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()
        for values in (self.pins, self.responses):
            if isinstance(values, MemoryKeyValues):
                values.clear()


def open_stores(config: SessionStore) -> Stores:
    if config.store == "memory":
        responses = MemoryKeyValues(config.ttl_s, max_chars=config.max_response_chars)
        return Stores(MemoryKeyValues(config.ttl_s, max_entries=config.max_pins), responses)
    if config.url is None:
        raise ConfigError(f"sessions.url_env: the variable '{config.url_env}' that holds the store's url is not set")
    # One more try on a new connection: what a restarted server leaves in the pool is dead.
    client = Redis.from_url(
        config.url,
        socket_timeout=config.timeout_s,
        socket_connect_timeout=config.timeout_s,
        retry=Retry(NoBackoff(), retries=1),
    )
    return Stores(RedisKeyValues(client, "pin", config.ttl_s), RedisKeyValues(client, "response", config.ttl_s), client)
