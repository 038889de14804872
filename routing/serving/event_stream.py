"""A streamed chat completion told in another API's events (Responses', Anthropic's): the one
loop both front doors share. Once events flow, a failure ends the stream with the API's own
error events; the model is never switched mid-answer."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Protocol, TypeVar

from routing.errors import ServiceError
from routing.protocol import ChatCompletionChunk

logger = logging.getLogger(__name__)
E = TypeVar("E")


class EventTranslator(Protocol[E]):
    def start(self, model: str) -> list[E]: ...

    def feed(self, chunk: ChatCompletionChunk) -> list[E]: ...

    def finish(self) -> list[E]: ...

    def fail(self, error: ServiceError) -> list[E]: ...


async def translated(
    translator: EventTranslator[E], model: str, chunks: AsyncIterator[ChatCompletionChunk], render: Callable[[E], str]
) -> AsyncIterator[str]:
    """``chunks`` of ``model``'s answer as ``translator``'s events, each rendered as a server-sent event."""
    for event in translator.start(model):
        yield render(event)
    failure: ServiceError | None = None
    try:
        async for chunk in chunks:
            for event in translator.feed(chunk):
                yield render(event)
    except ServiceError as exc:
        failure = exc
    except Exception:
        logger.exception("stream failed")
        failure = ServiceError("internal error in the router service")
    for event in translator.finish() if failure is None else translator.fail(failure):
        yield render(event)
