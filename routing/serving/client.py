"""The router in this process, behind the ``openai`` client's surface: no Ray, no HTTP.

    client.chat.completions.create(**fields) ─► ChatCompletionRequest, validated as the HTTP body is
        ─► RoutingEngine, on a private event loop ─► openai.types.chat.ChatCompletion (or chunks)
                                                   └─ ServiceError ─► the openai exception the
                                                      HTTP service's error would have raised

The engine is :func:`~routing.serving.in_process.in_process_engine`, the one the service runs with its parts
as local objects, so a request is routed, falls back and fails exactly as over HTTP.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar, overload

from openai.pagination import AsyncPage, SyncPage
from openai.types import Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from routing.serving.client_engine import ConfigSource, Cursor, EngineThread, load_config
from routing.serving.client_wire import Seconds, chat_request, http_response, seconds_of

__all__ = ["AsyncRouterClient", "AsyncRouterStream", "RawResponse", "RouterClient", "RouterStream", "load_config"]

T = TypeVar("T")


class RawResponse(Generic[T]):
    """What ``with_raw_response`` calls return, as the openai client's ``LegacyAPIResponse``:
    the response's headers (the ``x-route-*`` ones) and :meth:`parse` for the result."""

    def __init__(self, http_response: Any, parsed: T) -> None:
        self.http_response = http_response
        self.headers = http_response.headers
        self.status_code = http_response.status_code
        self._parsed = parsed

    def parse(self) -> T:
        return self._parsed


class RouterStream:
    """A streamed chat completion, used as ``openai.Stream[ChatCompletionChunk]``. Leaving its
    ``with`` block, breaking out of a ``for`` loop over it, or :meth:`close` ends it early: the
    upstream stream is closed and the usage so far recorded. A failure after the first chunk is
    raised from the iteration as :class:`openai.APIError`."""

    def __init__(self, core: EngineThread, headers: Mapping[str, str], cursor: Cursor, timeout: float | None) -> None:
        self.response = http_response(200, headers)
        self._core, self._cursor, self._timeout = core, cursor, timeout
        self._closed = False

    def _next(self) -> ChatCompletionChunk | None:
        if self._closed:
            return None
        future = self._core.submit(self._cursor.next(self._timeout))
        try:
            chunk = future.result()
        except BaseException:
            future.cancel()
            self.close()
            raise
        if chunk is None:
            self.close()
        return chunk

    def __next__(self) -> ChatCompletionChunk:
        chunk = self._next()
        if chunk is None:
            raise StopIteration
        return chunk

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        try:
            while (chunk := self._next()) is not None:
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        # At interpreter exit the loop's thread no longer runs, and there is nothing left to record.
        if self._closed or self._core.closed or sys.is_finalizing():
            self._closed = True
            return
        self._closed = True
        self._core.submit(self._cursor.close()).result()

    def __enter__(self) -> RouterStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncRouterStream:
    """A streamed chat completion, used as ``openai.AsyncStream[ChatCompletionChunk]``; see
    :class:`RouterStream`."""

    def __init__(self, core: EngineThread, headers: Mapping[str, str], cursor: Cursor, timeout: float | None) -> None:
        self.response = http_response(200, headers)
        self._core, self._cursor, self._timeout = core, cursor, timeout
        self._closed = False

    async def _next(self) -> ChatCompletionChunk | None:
        if self._closed:
            return None
        try:
            chunk = await asyncio.wrap_future(self._core.submit(self._cursor.next(self._timeout)))
        except BaseException:
            await self.close()
            raise
        if chunk is None:
            await self.close()
        return chunk

    async def __anext__(self) -> ChatCompletionChunk:
        chunk = await self._next()
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    async def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        try:
            while (chunk := await self._next()) is not None:
                yield chunk
        finally:
            await self.close()

    async def close(self) -> None:
        if self._closed or self._core.closed:
            self._closed = True
            return
        self._closed = True
        await asyncio.wrap_future(self._core.submit(self._cursor.close()))

    async def __aenter__(self) -> AsyncRouterStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


# ---------------------------------------------------------------- the sync client


class _RawCompletions:
    def __init__(self, core: EngineThread) -> None:
        self._core = core

    def create(
        self,
        *,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        timeout: Seconds = None,
        **fields: Any,
    ) -> RawResponse[ChatCompletion] | RawResponse[RouterStream]:
        request, seconds = chat_request({**fields, **(extra_body or {})}), seconds_of(timeout)
        headers, answer = _wait(self._core.submit(self._core.answer(request, seconds)))
        if isinstance(answer, Cursor):
            return RawResponse(http_response(200, headers), RouterStream(self._core, headers, answer, seconds))
        return RawResponse(http_response(200, headers), answer)


def _wait(future: Future[T]) -> T:
    try:
        return future.result()
    except BaseException:
        future.cancel()  # e.g. Ctrl-C in a notebook: the request stops too
        raise


class Completions:
    def __init__(self, core: EngineThread) -> None:
        self.with_raw_response = _RawCompletions(core)

    @overload
    def create(self, *, stream: Literal[False] = False, **fields: Any) -> ChatCompletion: ...

    @overload
    def create(self, *, stream: Literal[True], **fields: Any) -> RouterStream: ...

    @overload
    def create(self, *, stream: bool, **fields: Any) -> ChatCompletion | RouterStream: ...

    def create(self, **fields: Any) -> ChatCompletion | RouterStream:
        """A chat completion: ``fields`` are the HTTP body's (``model``, ``messages``, ``stream``,
        ``max_tokens``, ...), validated as the service validates them; ``extra_body`` is merged
        into them as the openai client does. ``timeout`` bounds the wait for the answer, or for
        each chunk of a stream, in seconds. ``extra_headers`` and ``extra_query`` are accepted
        and have no effect, as on the service, which reads neither."""
        return self.with_raw_response.create(**fields).parse()


class Chat:
    def __init__(self, core: EngineThread) -> None:
        self.completions = Completions(core)


class Models:
    def __init__(self, core: EngineThread) -> None:
        self._core = core

    def list(self) -> SyncPage[Model]:
        return SyncPage[Model].model_construct(**self._core.engine.models().model_dump(mode="json"))


class RouterClient:
    """The router service in this process, used like ``openai.OpenAI``: ``chat.completions.create``
    (plain, streamed, ``with_raw_response`` for the ``x-route-*`` headers) and ``models.list``.

    ``config`` is the application's ``args`` as in ``serve_config.yaml``: a mapping, an
    :class:`~routing.config.AppConfig`, a path to a YAML file holding them, or None for the
    defaults. Routers and local models load here, before the constructor returns. Close the
    client (or use it as a context manager) to stop its thread and close its connections."""

    def __init__(self, config: ConfigSource = None) -> None:
        self._core = EngineThread(config)
        self.chat = Chat(self._core)
        self.models = Models(self._core)

    def close(self) -> None:
        self._core.close()

    def __enter__(self) -> RouterClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


# ---------------------------------------------------------------- the async client


class _AsyncRawCompletions:
    def __init__(self, core: EngineThread) -> None:
        self._core = core

    async def create(
        self,
        *,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        timeout: Seconds = None,
        **fields: Any,
    ) -> RawResponse[ChatCompletion] | RawResponse[AsyncRouterStream]:
        request, seconds = chat_request({**fields, **(extra_body or {})}), seconds_of(timeout)
        headers, answer = await asyncio.wrap_future(self._core.submit(self._core.answer(request, seconds)))
        if isinstance(answer, Cursor):
            return RawResponse(http_response(200, headers), AsyncRouterStream(self._core, headers, answer, seconds))
        return RawResponse(http_response(200, headers), answer)


class AsyncCompletions:
    def __init__(self, core: EngineThread) -> None:
        self.with_raw_response = _AsyncRawCompletions(core)

    @overload
    async def create(self, *, stream: Literal[False] = False, **fields: Any) -> ChatCompletion: ...

    @overload
    async def create(self, *, stream: Literal[True], **fields: Any) -> AsyncRouterStream: ...

    @overload
    async def create(self, *, stream: bool, **fields: Any) -> ChatCompletion | AsyncRouterStream: ...

    async def create(self, **fields: Any) -> ChatCompletion | AsyncRouterStream:
        """As :meth:`Completions.create`."""
        return (await self.with_raw_response.create(**fields)).parse()


class AsyncChat:
    def __init__(self, core: EngineThread) -> None:
        self.completions = AsyncCompletions(core)


class AsyncModels:
    def __init__(self, core: EngineThread) -> None:
        self._core = core

    async def list(self) -> AsyncPage[Model]:
        return AsyncPage[Model].model_construct(**self._core.engine.models().model_dump(mode="json"))


class AsyncRouterClient:
    """:class:`RouterClient` for asyncio code, used like ``openai.AsyncOpenAI``; it works from any
    event loop, since the engine runs on a loop of its own. The constructor loads the routers and
    local models, and blocks while it does."""

    def __init__(self, config: ConfigSource = None) -> None:
        self._core = EngineThread(config)
        self.chat = AsyncChat(self._core)
        self.models = AsyncModels(self._core)

    async def close(self) -> None:
        await asyncio.to_thread(self._core.close)

    async def __aenter__(self) -> AsyncRouterClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()
