"""Whether a conversation's request is decided afresh or by its pin, by the router's stickiness:

- a tool's result coming back goes to the model that called the tool (``inherited``);
- a later user turn: ``never`` keeps the pinned model, ``on_user_turn`` decides afresh,
  ``escalate_only`` decides afresh but moves only to a more capable candidate;
- the first user turn, no pin yet, or stickiness ``off``: afresh.

What answered is pinned after the answer, so a fallback's model is the one a tool loop returns to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from routing.protocol import RouteDecision
from routing.routers.conversation_settings import Stickiness
from routing.serving.conversation import ConversationRef
from routing.serving.pins import Pin, PinStore
from routing.serving.telemetry import Telemetry

Verdict = Literal["fresh", "inherit", "keep", "escalate"]


@dataclass(frozen=True)
class Looked:
    """A conversation's request, its pin (if any) and what it says to do."""

    conversation: ConversationRef
    pin: Pin | None
    verdict: Verdict

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
        pin = await self.store.get(router, conversation.session.key)
        if pin is not None and pin.key not in keys:
            pin = None
        return Looked(conversation, pin, verdict(stickiness, pin, conversation))

    async def remember(self, looked: Looked | None, key: str, decision: RouteDecision | None) -> None:
        """Pins what answered ``looked``'s request: ``key``, by ``decision``."""
        if looked is None or decision is None:
            return
        await self.store.put(decision.router, looked.conversation.session.key, Pin(key=key, decision=decision))
        self.telemetry.pins(self.store.size())
