"""The router in this process, behind the ``openai`` client's surface: no Ray, no HTTP.

    client.chat.completions.create(**fields) ─► ChatCompletionRequest, validated as the HTTP body is
        ─► RoutingEngine, on a private event loop ─► openai.types.chat.ChatCompletion (or chunks)
                                                   └─ ServiceError ─► the openai exception the
                                                      HTTP service's error would have raised

The engine is :func:`~routing.engine.in_process_engine`, the one the service runs with its parts
as local objects, so a request is routed, falls back and fails exactly as over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Mapping
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar, overload

import httpx
import openai
import yaml
from openai import NotGiven, Omit
from openai.pagination import AsyncPage, SyncPage
from openai.types import Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import BaseModel, ValidationError

from routing import protocol
from routing.config import AppConfig, ConfigError, load_app_config
from routing.engine import RoutingEngine, in_process_engine
from routing.errors import ServiceError
from routing.headers import error_headers, route_headers
from routing.resilience import close_stream
from routing.routers import check_routers
from routing.validation import invalid_request

__all__ = ["AsyncRouterClient", "AsyncRouterStream", "RawResponse", "RouterClient", "RouterStream", "load_config"]

T = TypeVar("T")

ConfigSource = AppConfig | Mapping[str, Any] | str | os.PathLike[str] | None
Seconds = float | NotGiven | None

# Errors and raw responses carry an httpx request, as the openai client's do; this one is never sent.
_URL = "http://routellm.in-process/v1/chat/completions"
_INTERNAL = "internal error in the router service"
# How openai's client picks the exception for a status (``OpenAI._make_status_error``).
_STATUS_ERRORS: dict[int, type[openai.APIStatusError]] = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    409: openai.ConflictError,
    422: openai.UnprocessableEntityError,
    429: openai.RateLimitError,
}


def load_config(source: ConfigSource = None) -> AppConfig:
    """The application config as ``graph.build_app`` reads its ``args``: from an :class:`AppConfig`,
    a mapping, a YAML file holding the mapping, or the defaults; environment variables applied,
    router checkpoints checked."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        try:
            source = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        if source is not None and not isinstance(source, Mapping):
            raise ConfigError(f"{path}: expected a mapping of the application's args")
    config = (source if isinstance(source, AppConfig) else load_app_config(source)).resolve_env(os.environ)
    check_routers(config)
    return config


def chat_request(fields: Mapping[str, Any]) -> protocol.ChatCompletionRequest:
    """The request the HTTP service reads from the body the openai client sends for ``fields``.

    The fields go through JSON as they would on the wire (openai's "not given" markers left out,
    its own response objects as their set fields), so that the strict validation sees what the
    service sees, and a bad field gets the service's 400 word for word."""
    given = {key: value for key, value in fields.items() if not isinstance(value, NotGiven | Omit)}
    body = json.loads(json.dumps(given, default=_jsonable))
    try:
        return protocol.ChatCompletionRequest.model_validate(body)
    except ValidationError as exc:
        raise status_error(invalid_request(list(exc.errors(include_url=False)), body)) from None


def _jsonable(value: object) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_unset=True)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _http_response(status: int, headers: Mapping[str, str], body: Any = None) -> httpx.Response:
    return httpx.Response(status, headers=headers, json=body, request=httpx.Request("POST", _URL))


def status_error(exc: ServiceError) -> openai.APIStatusError:
    """What the openai client raises for the HTTP service's error response to ``exc``."""
    body = exc.to_dict()
    response = _http_response(exc.status_code, error_headers(exc), {"error": body})
    default = openai.InternalServerError if exc.status_code >= 500 else openai.APIStatusError
    error_class = _STATUS_ERRORS.get(exc.status_code, default)
    # The message as the openai client words it (``_make_status_error_from_response``).
    return error_class(f"Error code: {exc.status_code} - {exc.message}", response=response, body=body)


def stream_error(exc: ServiceError) -> openai.APIError:
    """What the openai client raises for the error event that ends a stream after its first token."""
    return openai.APIError(exc.message, httpx.Request("POST", _URL), body=exc.to_dict())


def _seconds(timeout: Seconds) -> float | None:
    if timeout is None or isinstance(timeout, NotGiven):
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"timeout: a number of seconds or None, not {type(timeout).__name__}")
    return float(timeout)


async def _answer(step: Awaitable[T], timeout: float | None, as_error: Callable[[ServiceError], openai.APIError]) -> T:
    """``step``'s result within ``timeout``; its failures raised as the openai client raises the
    service's errors: an error response (``status_error``) or a stream's error event (``stream_error``)."""
    try:
        return await asyncio.wait_for(step, timeout)
    except asyncio.TimeoutError:
        raise openai.APITimeoutError(request=httpx.Request("POST", _URL)) from None
    except ServiceError as exc:
        raise as_error(exc) from None
    except Exception as exc:  # the service answers 500 and logs; here the cause stays chained
        raise as_error(ServiceError(_INTERNAL)) from exc


class _Cursor:
    """An open stream on the engine's loop, read one chunk per call."""

    def __init__(self, chunks: AsyncIterator[protocol.ChatCompletionChunk]) -> None:
        self.chunks = chunks
        self.pull: asyncio.Future[protocol.ChatCompletionChunk | None] | None = None

    async def next(self, timeout: float | None) -> ChatCompletionChunk | None:
        """The next chunk, or None at the end."""
        self.pull = asyncio.ensure_future(anext(self.chunks, None))
        chunk = await _answer(self.pull, timeout, stream_error)
        if chunk is None:
            return None
        return ChatCompletionChunk.model_construct(**chunk.model_dump(mode="json", exclude_none=True))

    async def close(self) -> None:
        # An async generator cannot be closed while a pull is inside it (one cancelled by a
        # caller that gave up waiting may still be unwinding): that pull ends first.
        if self.pull is not None and not self.pull.done():
            self.pull.cancel()
            await asyncio.wait({self.pull})
        await close_stream(self.chunks)  # the engine closes the upstream stream and records the usage


class _EngineThread:
    """The engine and the event loop it runs on, in a daemon thread of its own.

    The upstream clients' connections belong to the loop that opened them, so every call, from
    sync code, from any other loop (a notebook's included) or thread, runs on this one loop and
    is answered through a future."""

    def __init__(self, config: ConfigSource) -> None:
        self.engine: RoutingEngine = in_process_engine(load_config(config))
        self.lock = threading.Lock()
        self.closed = False
        self.cursors: weakref.WeakSet[_Cursor] = weakref.WeakSet()  # touched on the loop only
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="routellm-client", daemon=True)
        self.thread.start()

    def submit(self, step: Coroutine[Any, Any, T]) -> Future[T]:
        with self.lock:
            if self.closed:
                step.close()
                raise RuntimeError("this router client is closed")
            return asyncio.run_coroutine_threadsafe(step, self.loop)

    async def answer(
        self, request: protocol.ChatCompletionRequest, timeout: float | None
    ) -> tuple[dict[str, str], ChatCompletion | _Cursor]:
        """The ``x-route-*`` headers, and the completion or, for a stream, its open cursor."""
        if request.stream:
            outcome, chunks = await _answer(self.engine.stream(request), timeout, status_error)
            cursor = _Cursor(chunks)
            self.cursors.add(cursor)
            return route_headers(outcome), cursor
        outcome, completion = await _answer(self.engine.complete(request), timeout, status_error)
        body = completion.model_dump(mode="json", exclude_none=True)
        return route_headers(outcome), ChatCompletion.model_construct(**body)

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()

    async def _shutdown(self) -> None:
        # As asyncio.run ends a loop: calls still running are cancelled, and streams left open
        # are closed, which closes their upstream streams and records their usage. Each stream
        # is closed from its outermost generator in: asyncio's own sweep closes every generator
        # at once, and an inner one already closing makes the outer one fail before it records.
        running = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        for cursor in list(self.cursors):
            await cursor.close()
        await self.loop.shutdown_asyncgens()
        await self.engine.aclose()
        await self.loop.shutdown_default_executor()


class RawResponse(Generic[T]):
    """What ``with_raw_response`` calls return, as the openai client's ``LegacyAPIResponse``:
    the response's headers (the ``x-route-*`` ones) and :meth:`parse` for the result."""

    def __init__(self, http_response: httpx.Response, parsed: T) -> None:
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

    def __init__(self, core: _EngineThread, headers: Mapping[str, str], cursor: _Cursor, timeout: float | None) -> None:
        self.response = _http_response(200, headers)
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

    def __init__(self, core: _EngineThread, headers: Mapping[str, str], cursor: _Cursor, timeout: float | None) -> None:
        self.response = _http_response(200, headers)
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
    def __init__(self, core: _EngineThread) -> None:
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
        request, seconds = chat_request({**fields, **(extra_body or {})}), _seconds(timeout)
        headers, answer = _wait(self._core.submit(self._core.answer(request, seconds)))
        if isinstance(answer, _Cursor):
            return RawResponse(_http_response(200, headers), RouterStream(self._core, headers, answer, seconds))
        return RawResponse(_http_response(200, headers), answer)


def _wait(future: Future[T]) -> T:
    try:
        return future.result()
    except BaseException:
        future.cancel()  # e.g. Ctrl-C in a notebook: the request stops too
        raise


class Completions:
    def __init__(self, core: _EngineThread) -> None:
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
    def __init__(self, core: _EngineThread) -> None:
        self.completions = Completions(core)


class Models:
    def __init__(self, core: _EngineThread) -> None:
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
        self._core = _EngineThread(config)
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
    def __init__(self, core: _EngineThread) -> None:
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
        request, seconds = chat_request({**fields, **(extra_body or {})}), _seconds(timeout)
        headers, answer = await asyncio.wrap_future(self._core.submit(self._core.answer(request, seconds)))
        if isinstance(answer, _Cursor):
            return RawResponse(_http_response(200, headers), AsyncRouterStream(self._core, headers, answer, seconds))
        return RawResponse(_http_response(200, headers), answer)


class AsyncCompletions:
    def __init__(self, core: _EngineThread) -> None:
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
    def __init__(self, core: _EngineThread) -> None:
        self.completions = AsyncCompletions(core)


class AsyncModels:
    def __init__(self, core: _EngineThread) -> None:
        self._core = core

    async def list(self) -> AsyncPage[Model]:
        return AsyncPage[Model].model_construct(**self._core.engine.models().model_dump(mode="json"))


class AsyncRouterClient:
    """:class:`RouterClient` for asyncio code, used like ``openai.AsyncOpenAI``; it works from any
    event loop, since the engine runs on a loop of its own. The constructor loads the routers and
    local models, and blocks while it does."""

    def __init__(self, config: ConfigSource = None) -> None:
        self._core = _EngineThread(config)
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
