"""Whether a conversation's request is decided afresh or by its pin, by the router's stickiness:

- a tool's result coming back goes to the model that called the tool (``inherited``);
- a later user turn: ``never`` keeps the pinned model, ``on_user_turn`` decides afresh,
  ``escalate_only`` decides afresh but moves only to a more capable candidate;
- the first user turn, no pin yet, or stickiness ``off``: afresh.

What answered is pinned after the answer, so a fallback's model is the one a tool loop returns to.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from routing.protocol import RouteDecision
from routing.routers.conversation_settings import Stickiness
from routing.serving.conversation import ConversationRef
from routing.serving.pins import MemoryPins, Pin, PinStore, PinStoreError
from routing.serving.redis_pins import RedisPins
from routing.serving.telemetry import Telemetry
from routing.session_settings import SessionStore
from routing.settings import ConfigError

logger = logging.getLogger(__name__)

Verdict = Literal["fresh", "inherit", "keep", "escalate"]


@dataclass(frozen=True)
class Looked:
    """A conversation's request, its pin (if any) and what it says to do; ``store_error``: why
    the store could not say (the request is then decided afresh)."""

    conversation: ConversationRef
    pin: Pin | None
    verdict: Verdict
    store_error: str | None = None

    def keeps(self, chosen: str, keys: Sequence[str]) -> bool:
        """Whether the pin holds against a fresh choice of ``chosen`` among ``keys`` (cheapest first)."""
        if self.pin is None or self.verdict != "escalate":
            return False
        return keys.index(chosen) <= keys.index(self.pin.key)


def verdict(stickiness: Stickiness, pin: Pin | None, conversation: ConversationRef) -> Verdict:
    turn = conversation.turn
    if pin is None or stickiness == "off":
        return "fresh"
    if turn.tool_result:
        return "inherit"
    # A conversation's first turn, sent again, is decided afresh: a stateless client asking
    # one question twice (at another threshold, say) gets what it would get alone.
    if turn.user_turns <= 1:
        return "fresh"
    if stickiness == "never":
        return "keep"
    return "fresh" if stickiness == "on_user_turn" else "escalate"


def pin_store(config: SessionStore) -> PinStore:
    if config.store == "memory":
        return MemoryPins(config)
    if config.url is None:
        raise ConfigError(f"sessions.url_env: the variable '{config.url_env}' that holds the store's url is not set")
    return RedisPins(config)


class Sessions:
    def __init__(self, store: PinStore, telemetry: Telemetry) -> None:
        self.store = store
        self.telemetry = telemetry

    async def look_up(
        self, router: str, stickiness: Stickiness, conversation: ConversationRef | None, keys: Sequence[str]
    ) -> Looked | None:
        """None: the request is not part of a conversation the router keeps (stickiness ``off``).
        ``keys``: the router's candidates; a pin to another model (the config changed) is not kept."""
        if conversation is None or stickiness == "off":
            return None
        try:
            pin = await self.store.get(router, conversation.session.key)
        except PinStoreError as exc:
            self.telemetry.session_store_error("get")
            return Looked(conversation, None, "fresh", str(exc))
        if pin is not None and pin.key not in keys:
            pin = None
        return Looked(conversation, pin, verdict(stickiness, pin, conversation))

    async def remember(self, looked: Looked | None, key: str, decision: RouteDecision | None) -> None:
        """Pins what answered ``looked``'s request: ``key``, by ``decision``."""
        if looked is None or decision is None:
            return
        try:
            await self.store.put(decision.router, looked.conversation.session.key, Pin(key=key, decision=decision))
        except PinStoreError as exc:  # the answer is on its way: only the pin is lost
            self.telemetry.session_store_error("put")
            logger.warning("a conversation's pin was not stored: %s", exc)
            return
        self.telemetry.pins(self.store.size())
