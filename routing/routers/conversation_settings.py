"""How a router treats a conversation: what of it is scored, and how long a decision holds (what
is done with it: :mod:`routing.serving.conversation` and :mod:`routing.serving.pins`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from routing.settings import Strict

Scored = Literal["last_user_turn", "user_turns"]
Stickiness = Literal["escalate_only", "never", "on_user_turn", "off"]


class ConversationSettings(Strict):
    """A conversation's decision is pinned under its session; a request that carries a tool's
    result goes to the model that called the tool, whatever the stickiness (but ``off``)."""

    scored: Scored = Field(
        default="user_turns",
        description="last_user_turn: the newest user turn alone; user_turns: the newest user turn, then the "
        "first one as its context (a single turn scores alike either way; the system prompt never counts)",
    )
    stickiness: Stickiness = Field(
        default="escalate_only",
        description="on a new user turn: escalate_only (re-scored, and moved only to a more capable "
        "candidate), never (the first decision holds), on_user_turn (re-scored), off (no pins: every "
        "request is scored alone, tool results included)",
    )
