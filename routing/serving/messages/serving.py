"""``POST /v1/messages``, independent of HTTP: a Messages request becomes a chat completion, is
routed by the engine like any chat request of its conversation (a tool's result goes back to the
model that called the tool), and is answered either through the chosen upstream's chat
completions (translated) or, by an upstream that speaks Messages itself, passed through unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from routing.protocol import Usage
from routing.serving.answered import Outcome
from routing.serving.conversation import Hints, conversation_of
from routing.serving.engine import RoutingEngine
from routing.serving.event_stream import Event, server_sent, translated
from routing.serving.messages.events import MessageEvents
from routing.serving.messages.protocol import MessagesRequest
from routing.serving.messages.translate import answered, chat_request
from routing.upstreams.config import speaks


class MessagesServing:
    def __init__(self, engine: RoutingEngine) -> None:
        self.engine = engine

    async def create(
        self, request: MessagesRequest, raw: dict[str, Any], hints: Hints
    ) -> tuple[Outcome, dict[str, Any]]:
        chat = chat_request(request, stream=False)

        async def attempt(key: str) -> dict[str, Any]:
            if self._speaks(key):
                return await self.engine.upstreams[key].call_native("messages", raw)
            return answered(await self.engine.upstreams[key].complete(chat)).model_dump(mode="json")

        conversation = conversation_of(chat, hints.session, hints.caller, hints.stickiness)
        return await self.engine.answer(chat, conversation, attempt, _message_usage, hints.key_name)

    async def stream(
        self, request: MessagesRequest, raw: dict[str, Any], hints: Hints
    ) -> tuple[Outcome, AsyncIterator[str]]:
        """Opens the chosen upstream's stream (a failure before its first token may still fall
        back), then gives its events as server-sent events."""
        chat = chat_request(request, stream=True)

        async def attempt(key: str) -> AsyncIterator[Event]:
            if self._speaks(key):
                return await self.engine.upstreams[key].open_native("messages", raw)
            chunks = await self.engine.upstreams[key].open_stream(chat)
            return translated(MessageEvents(), self.engine.config.upstreams[key].model, chunks)

        conversation = conversation_of(chat, hints.session, hints.caller, hints.stickiness)
        outcome, events = await self.engine.open(chat, conversation, attempt, _StreamUsage(), hints.key_name)
        return outcome, server_sent(events, MessageEvents().fail)

    def _speaks(self, key: str) -> bool:
        return speaks(self.engine.config.upstreams[key], "messages")


@dataclass
class _StreamUsage:
    """A streamed message's usage: its input tokens come with ``message_start``, its output
    tokens with ``message_delta``."""

    input_tokens: int = field(default=0)

    def __call__(self, event: Event) -> Usage | None:
        if event.get("type") == "message_start":
            self.input_tokens = int(((event.get("message") or {}).get("usage") or {}).get("input_tokens") or 0)
        return _usage(event.get("usage"), self.input_tokens) if event.get("type") == "message_delta" else None


def _message_usage(message: dict[str, Any]) -> Usage | None:
    return _usage(message.get("usage"), 0)


def _usage(usage: Any, input_tokens: int) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    prompt = int(usage.get("input_tokens") or input_tokens)
    completion = int(usage.get("output_tokens") or 0)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)
