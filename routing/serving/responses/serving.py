"""``POST /v1/responses``, independent of HTTP: a Responses request becomes a chat completion
over the conversation so far (its ``previous_response_id``'s stored messages, then its input),
is routed and answered by the engine like any chat request of that conversation, and comes back
as a response object or its event stream; the answer is stored unless ``store`` is false."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

from routing.protocol import ChatCompletionRequest
from routing.serving.conversation import ConversationRef, Hints, conversation_of
from routing.serving.engine import Outcome, RoutingEngine
from routing.serving.event_stream import translated
from routing.serving.responses.events import ResponseEvents, server_sent
from routing.serving.responses.protocol import ResponseObject, ResponsesRequest
from routing.serving.responses.store import ResponseStore, StoredResponse
from routing.serving.responses.translate import answered, chat_request, input_messages


class ResponsesServing:
    def __init__(self, engine: RoutingEngine) -> None:
        self.engine = engine
        self.store = ResponseStore(engine.stores.responses, engine.telemetry)

    async def create(self, request: ResponsesRequest, hints: Hints) -> tuple[Outcome, ResponseObject]:
        earlier = await self._earlier(request, hints)
        messages = [*(earlier.messages if earlier else []), *input_messages(request)]
        chat = chat_request(request, messages, stream=False)
        conversation = _conversation(chat, request, hints, earlier)
        outcome, completion = await self.engine.complete(chat, conversation)
        response, answer = answered(request, completion)
        if request.store:
            await self.store.put(response.id, hints.caller, conversation.session, messages, answer)
        return outcome, response

    async def stream(self, request: ResponsesRequest, hints: Hints) -> tuple[Outcome, AsyncIterator[str]]:
        """Opens the upstream's stream (a failure before its first token may still fall back),
        then gives its events as server-sent events."""
        earlier = await self._earlier(request, hints)
        messages = [*(earlier.messages if earlier else []), *input_messages(request)]
        chat = chat_request(request, messages, stream=True)
        conversation = _conversation(chat, request, hints, earlier)
        outcome, chunks = await self.engine.stream(chat, conversation)
        events = ResponseEvents(request)

        async def sent() -> AsyncIterator[str]:
            async for event in translated(events, outcome.model, chunks, server_sent):
                yield event
            if request.store and events.response is not None:
                answer = events.assistant_message()
                await self.store.put(events.response_id, hints.caller, conversation.session, messages, answer)

        return outcome, sent()

    async def _earlier(self, request: ResponsesRequest, hints: Hints) -> StoredResponse | None:
        if request.previous_response_id is None:
            return None
        return await self.store.get(request.previous_response_id, hints.caller)


def _conversation(
    chat: ChatCompletionRequest, request: ResponsesRequest, hints: Hints, earlier: StoredResponse | None
) -> ConversationRef:
    """The conversation a response continues: its previous response's (unless an ``x-session-id``
    names another), else the one its ``conversation``, ids or opening say."""
    found = conversation_of(chat, hints.session, hints.caller, hints.stickiness, request.conversation_id())
    if earlier is not None and not hints.session:
        return replace(found, session=earlier.session)
    return found
