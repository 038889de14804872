"""Streams in another API's events (Responses', Anthropic's): a streamed chat completion told in
them, and any such stream (translated, or an upstream's own passed through) as server-sent
events. Once events flow, a failure ends the stream with the API's own error events; the model is
never switched mid-answer."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from routing.errors import ServiceError
from routing.protocol import ChatCompletionChunk

logger = logging.getLogger(__name__)
Event = dict[str, Any]  # an event's data; its "type" names it


class EventTranslator(Protocol):
    def start(self, model: str) -> list[Event]: ...

    def feed(self, chunk: ChatCompletionChunk) -> list[Event]: ...

    def finish(self) -> list[Event]: ...


async def translated(
    translator: EventTranslator, model: str, chunks: AsyncIterator[ChatCompletionChunk]
) -> AsyncIterator[Event]:
    """``chunks`` of ``model``'s answer as ``translator``'s events."""
    for event in translator.start(model):
        yield event
    async for chunk in chunks:
        for event in translator.feed(chunk):
            yield event
    for event in translator.finish():
        yield event


async def server_sent(events: AsyncIterator[Event], fail: Callable[[ServiceError], list[Event]]) -> AsyncIterator[str]:
    """``events`` as server-sent events; a failure among them ends the stream with ``fail``'s events."""
    try:
        async for event in events:
            yield _sent(event)
        return
    except ServiceError as exc:
        failure = exc
    except Exception:
        logger.exception("stream failed")
        failure = ServiceError("internal error in the router service")
    for event in fail(failure):
        yield _sent(event)


def _sent(event: Event) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"
