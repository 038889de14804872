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
from routing.serving.kv_store import KeyValues, StoreError
from routing.serving.pins import Pin
from routing.serving.telemetry import Telemetry

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


class Sessions:
    def __init__(self, pins: KeyValues, telemetry: Telemetry) -> None:
        self.pins = pins
        self.telemetry = telemetry

    async def look_up(
        self, router: str, stickiness: Stickiness, conversation: ConversationRef | None, keys: Sequence[str]
    ) -> Looked | None:
        """None: the request is not part of a conversation the router keeps (stickiness ``off``).
        ``keys``: the router's candidates; a pin to another model (the config changed) is not kept."""
        if conversation is None or stickiness == "off":
            return None
        try:
            stored = await self.pins.get(_pin_key(router, conversation.session.key))
            pin = None if stored is None else Pin.from_json(stored)
        except StoreError as exc:
            self.telemetry.session_store_error("get")
            return Looked(conversation, None, "fresh", str(exc))
        if pin is not None and pin.key not in keys:
            pin = None
        return Looked(conversation, pin, verdict(stickiness, pin, conversation))

    async def remember(self, looked: Looked | None, key: str, decision: RouteDecision | None) -> None:
        """Pins what answered ``looked``'s request: ``key``, by ``decision``."""
        if looked is None or decision is None:
            return
        if looked.pin is not None and looked.pin.key == key and decision.decided in ("pinned", "inherited"):
            return  # held as it was: reading it renewed its expiry
        try:
            pin = Pin(key=key, decision=decision)
            await self.pins.put(_pin_key(decision.router, looked.conversation.session.key), pin.to_json())
        except StoreError as exc:  # the answer is on its way: only the pin is lost
            self.telemetry.session_store_error("put")
            logger.warning("a conversation's pin was not stored: %s", exc)
            return
        self.telemetry.pins(self.pins.size())


def _pin_key(router: str, session: str) -> str:
    return f"{router}:{session}"
