"""``POST /v1/messages``, independent of HTTP: a Messages request becomes a chat completion, is
routed and answered by the engine like any chat request of its conversation (a tool's result
goes back to the model that called the tool), and comes back as a message or its event stream."""

from __future__ import annotations

from collections.abc import AsyncIterator

from routing.serving.conversation import Hints, conversation_of
from routing.serving.engine import Outcome, RoutingEngine
from routing.serving.event_stream import translated
from routing.serving.messages.events import MessageEvents, server_sent
from routing.serving.messages.protocol import MessageObject, MessagesRequest
from routing.serving.messages.translate import answered, chat_request


class MessagesServing:
    def __init__(self, engine: RoutingEngine) -> None:
        self.engine = engine

    async def create(self, request: MessagesRequest, hints: Hints) -> tuple[Outcome, MessageObject]:
        chat = chat_request(request, stream=False)
        conversation = conversation_of(chat, hints.session, hints.caller, hints.stickiness)
        outcome, completion = await self.engine.complete(chat, conversation)
        return outcome, answered(completion)

    async def stream(self, request: MessagesRequest, hints: Hints) -> tuple[Outcome, AsyncIterator[str]]:
        """Opens the upstream's stream (a failure before its first token may still fall back),
        then gives its events as server-sent events."""
        chat = chat_request(request, stream=True)
        conversation = conversation_of(chat, hints.session, hints.caller, hints.stickiness)
        outcome, chunks = await self.engine.stream(chat, conversation)
        return outcome, translated(MessageEvents(), outcome.model, chunks, server_sent)
