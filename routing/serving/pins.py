"""Conversations' pinned decisions: per router and session, the candidate that answered the
conversation and the decision it came from. A pin stores the decision, not the threshold, so
share control moving a threshold and a checkpoint swap never move a pinned conversation."""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from routing.protocol import RouteDecision
from routing.session_settings import SessionStore


class PinStoreError(RuntimeError):
    """The store failed or did not answer in time: the pin is lost for this request, never the request."""


class Pin(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str = Field(description="the upstream key of the candidate that answered (or was chosen)")
    decision: RouteDecision

    def to_json(self) -> str:
        """The pin as a shared store keeps it: its decision whole, the fields sent as headers
        (the checkpoint, ...) included."""
        headers = {name for name, field in RouteDecision.model_fields.items() if field.exclude}
        decision = self.decision.model_dump(mode="json") | {name: getattr(self.decision, name) for name in headers}
        return json.dumps({"key": self.key, "decision": decision})

    @classmethod
    def from_json(cls, raw: str | bytes) -> Pin:
        try:
            data = json.loads(raw)
            return cls(key=data["key"], decision=RouteDecision.model_validate(data["decision"]))
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            raise PinStoreError(f"a stored pin is not readable: {exc}") from None


class PinStore(Protocol):
    async def get(self, router: str, session: str) -> Pin | None: ...

    async def put(self, router: str, session: str, pin: Pin) -> None: ...

    def size(self) -> int | None:
        """Pins held (None: the store does not say)."""
        ...

    async def aclose(self) -> None: ...


class MemoryPins:
    """Pins in this process, each kept ``ttl_s`` after its last use, at most ``max_pins`` of them
    (the least recently used dropped first)."""

    def __init__(self, config: SessionStore, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = config.ttl_s
        self.max_pins = config.max_pins
        self._clock = clock
        self._pins: OrderedDict[tuple[str, str], tuple[float, Pin]] = OrderedDict()

    async def get(self, router: str, session: str) -> Pin | None:
        entry = self._pins.get((router, session))
        if entry is None:
            return None
        expires, pin = entry
        now = self._clock()
        if expires <= now:
            del self._pins[(router, session)]
            return None
        self._pins[(router, session)] = (now + self.ttl_s, pin)
        self._pins.move_to_end((router, session))
        return pin

    async def put(self, router: str, session: str, pin: Pin) -> None:
        self._pins[(router, session)] = (self._clock() + self.ttl_s, pin)
        self._pins.move_to_end((router, session))
        while len(self._pins) > self.max_pins:
            self._pins.popitem(last=False)

    def size(self) -> int | None:
        return len(self._pins)

    async def aclose(self) -> None:
        self._pins.clear()
