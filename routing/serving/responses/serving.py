"""``POST /v1/responses``, independent of HTTP: a Responses request becomes a chat completion
over the conversation so far (its ``previous_response_id``'s stored messages, then its input),
is routed by the engine like any chat request of that conversation, and is answered either
through the chosen upstream's chat completions (translated) or, by an upstream that speaks
Responses itself, passed through unchanged; the answer is stored unless ``store`` is false."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from routing.protocol import ChatCompletionRequest, Usage
from routing.serving.answered import Outcome
from routing.serving.conversation import ConversationRef, Hints, conversation_of
from routing.serving.engine import RoutingEngine
from routing.serving.event_stream import Event, server_sent, translated
from routing.serving.responses.events import ResponseEvents
from routing.serving.responses.protocol import ResponsesRequest
from routing.serving.responses.store import ResponseStore, StoredResponse
from routing.serving.responses.translate import answered, assistant_of, chat_request, input_messages, native_body
from routing.upstreams.config import speaks

FINISHED = ("response.completed", "response.incomplete")


@dataclass
class Asked:
    """One request's view of its conversation: the stored response it continues (if any), the
    messages so far and the chat completion they make, and the conversation it belongs to."""

    request: ResponsesRequest
    raw: dict[str, Any]
    hints: Hints
    earlier: StoredResponse | None
    chat: ChatCompletionRequest
    conversation: ConversationRef

    def native_body(self, key: str) -> dict[str, Any]:
        """The request for upstream ``key``, which speaks Responses: unchanged when it continues
        nothing or a response of that upstream's own, else with the stored conversation as input."""
        own = self.earlier is None or self.earlier.native_key == key
        return native_body(self.raw, None if own else self.earlier.messages)  # type: ignore[union-attr]


class ResponsesServing:
    def __init__(self, engine: RoutingEngine) -> None:
        self.engine = engine
        self.store = ResponseStore(engine.stores.responses, engine.telemetry)

    async def create(
        self, request: ResponsesRequest, raw: dict[str, Any], hints: Hints
    ) -> tuple[Outcome, dict[str, Any]]:
        asked = await self._asked(request, raw, hints, stream=False)

        async def attempt(key: str) -> dict[str, Any]:
            if self._speaks(key):
                return await self.engine.upstreams[key].call_native("responses", asked.native_body(key))
            completion = await self.engine.upstreams[key].complete(asked.chat)
            return answered(request, completion).model_dump(mode="json")

        outcome, response = await self.engine.answer(asked.chat, asked.conversation, attempt, _usage, hints.key_name)
        await self._store(asked, response, outcome.key)
        return outcome, response

    async def stream(
        self, request: ResponsesRequest, raw: dict[str, Any], hints: Hints
    ) -> tuple[Outcome, AsyncIterator[str]]:
        """Opens the chosen upstream's stream (a failure before its first token may still fall
        back), then gives its events as server-sent events."""
        asked = await self._asked(request, raw, hints, stream=True)

        async def attempt(key: str) -> AsyncIterator[Event]:
            if self._speaks(key):
                return await self.engine.upstreams[key].open_native("responses", asked.native_body(key))
            chunks = await self.engine.upstreams[key].open_stream(asked.chat)
            return translated(ResponseEvents(request), self.engine.config.upstreams[key].model, chunks)

        outcome, events = await self.engine.open(asked.chat, asked.conversation, attempt, _event_usage, hints.key_name)

        async def stored(events: AsyncIterator[Event]) -> AsyncIterator[Event]:
            async for event in events:
                yield event
                if event.get("type") in FINISHED:
                    await self._store(asked, event["response"], outcome.key)

        return outcome, server_sent(stored(events), ResponseEvents(request).fail)

    async def _asked(self, request: ResponsesRequest, raw: dict[str, Any], hints: Hints, stream: bool) -> Asked:
        earlier = None
        if request.previous_response_id is not None:
            earlier = await self.store.get(request.previous_response_id, hints.caller)
        messages = [*(earlier.messages if earlier else []), *input_messages(request)]
        chat = chat_request(request, messages, stream)
        found = conversation_of(chat, hints.session, hints.caller, hints.stickiness, request.conversation_id())
        # A response continues its previous response's conversation, unless x-session-id names another.
        conversation = replace(found, session=earlier.session) if earlier and not hints.session else found
        return Asked(request, raw, hints, earlier, chat, conversation)

    async def _store(self, asked: Asked, response: dict[str, Any], key: str) -> None:
        if not asked.request.store:
            return
        messages = asked.chat.messages[1:] if asked.request.instructions else asked.chat.messages
        native_key = key if self._speaks(key) else None
        answer = assistant_of(response.get("output") or [])
        await self.store.put(
            response["id"], asked.hints.caller, asked.conversation.session, messages, answer, native_key
        )

    def _speaks(self, key: str) -> bool:
        return speaks(self.engine.config.upstreams[key], "responses")


def _usage(response: dict[str, Any]) -> Usage | None:
    usage = response.get("usage")
    if not isinstance(usage, dict) or "input_tokens" not in usage:
        return None
    prompt, completion = int(usage["input_tokens"]), int(usage.get("output_tokens", 0))
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def _event_usage(event: Event) -> Usage | None:
    return _usage(event["response"]) if event.get("type") in FINISHED else None
