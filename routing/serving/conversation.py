"""A request as part of a conversation: which conversation (its session), where in it the
request stands (a new user turn, or a tool's result coming back), and what of it a router scores."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast, get_args

from routing.errors import InvalidRequest
from routing.protocol import ChatCompletionRequest, ChatMessage
from routing.routers.conversation_settings import Scored, Stickiness

SESSION_HEADER = "x-session-id"
STICKINESS_HEADER = "x-route-stickiness"  # a request's own stickiness, e.g. off to be decided alone
SessionSource = Literal["header", "conversation_id", "metadata", "prompt_cache_key", "user", "conversation"]
METADATA_KEYS = ("session_id", "conversation_id")  # metadata entries that name a conversation
MAX_SHOWN_ID = 128  # a longer id (or one that is not plain text) is shown by its digest


@dataclass(frozen=True)
class Session:
    """``key``: what the conversation's pins are stored under; ``shown``: how answers name it."""

    key: str
    shown: str
    source: SessionSource


@dataclass(frozen=True)
class Turn:
    """``user_turns``: user messages so far; ``tool_result``: the newest message carries a
    tool's result (or continues an assistant's tool call), so the request is part of a tool loop."""

    user_turns: int
    tool_result: bool


@dataclass(frozen=True)
class Hints:
    """What a request says of itself outside its body: its ``x-session-id`` header, who sent it (a
    digest of its key, and the key's name), and its ``x-route-stickiness`` header."""

    session: str | None = None
    caller: str | None = None
    stickiness: str | None = None
    key_name: str | None = None


@dataclass(frozen=True)
class ConversationRef:
    """``stickiness``: the request's own, overriding its router's (None: the router's)."""

    session: Session
    turn: Turn
    stickiness: Stickiness | None = None


def turn_of(messages: Sequence[ChatMessage]) -> Turn:
    last = messages[-1]
    tool_result = last.role == "tool" or (last.role == "assistant" and bool(last.tool_calls))
    return Turn(sum(m.role == "user" for m in messages), tool_result)


def session_of(
    request: ChatCompletionRequest, header: str | None = None, caller: str | None = None, named: str | None = None
) -> Session:
    """The conversation ``request`` belongs to: the ``x-session-id`` header, else the conversation
    its API names (``named``: the Responses API's ``conversation``), else an id the body carries
    (``metadata.session_id`` or ``conversation_id``, then ``prompt_cache_key``), else the ``user``
    with the conversation's opening, else the opening alone (its system prompt and first user
    turn). ``caller``: who sent it (a digest of its key): callers never share a pin."""
    metadata = request.metadata or {}
    in_metadata = next((metadata[k] for k in METADATA_KEYS if metadata.get(k)), None)
    found: tuple[SessionSource, str] | None = (
        ("header", header)
        if header
        else ("conversation_id", named)
        if named
        else ("metadata", in_metadata)
        if in_metadata
        else ("prompt_cache_key", request.prompt_cache_key)
        if request.prompt_cache_key
        else None
    )
    if found is None:
        opening = _digest(*_opening(request.messages))
        found = ("user", f"{request.user}/{opening}") if request.user else ("conversation", opening)
    source, value = found
    shown = value if value.isprintable() and value.isascii() and len(value) <= MAX_SHOWN_ID else _digest(value)
    return Session(key=_digest(caller or "", source, value), shown=f"{source}:{shown}", source=source)


def conversation_of(
    request: ChatCompletionRequest,
    header: str | None = None,
    caller: str | None = None,
    stickiness: str | None = None,
    named: str | None = None,
) -> ConversationRef:
    """``stickiness``: the ``x-route-stickiness`` header, if the request sent one; ``named``: the
    conversation the request's API names."""
    if stickiness is not None and stickiness not in get_args(Stickiness):
        raise InvalidRequest(
            f"x-route-stickiness: '{stickiness}' is not one of {', '.join(get_args(Stickiness))}",
            param=STICKINESS_HEADER,
        )
    chosen = cast(Stickiness | None, stickiness)
    return ConversationRef(session_of(request, header, caller, named), turn_of(request.messages), chosen)


def _opening(messages: Sequence[ChatMessage]) -> tuple[str, str]:
    system = "\n".join(m.text() for m in messages if m.role in ("system", "developer"))
    first = next((m.text() for m in messages if m.role == "user"), "")
    return system, first


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


def scored_text(messages: Sequence[ChatMessage], scored: Scored, limit_chars: int) -> str:
    """What a router scores: the newest user turn, and for ``user_turns`` the conversation's
    first user turn after it, as context. The newest turn comes first, so that cutting the text to
    ``limit_chars`` (or an embedding model to its window) drops context, never the turn being
    answered. A single-turn request scores as its turn alone either way (so calibration tables
    hold), and the system prompt is never scored: one application sends the same one with every
    conversation, which would make them all look alike."""
    users = [m for m in messages if m.role == "user"]
    if not users:
        raise InvalidRequest("a routed request needs at least one 'user' message", param="messages")
    newest = users[-1].text()
    if scored == "last_user_turn" or len(users) == 1:
        return newest[:limit_chars]
    return f"{newest}\n\n{users[0].text()}"[:limit_chars]
