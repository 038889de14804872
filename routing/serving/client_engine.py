"""The in-process client's engine: the application config loaded as ``graph.build_app`` reads
it, and the engine running on an event loop of its own in a daemon thread."""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import AsyncIterator, Coroutine, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import yaml
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from routing import protocol
from routing.config import AppConfig, load_app_config
from routing.serving.client_wire import answer, status_error, stream_error
from routing.serving.conversation import conversation_of
from routing.serving.engine import RoutingEngine
from routing.serving.headers import route_headers
from routing.serving.in_process import in_process_engine
from routing.serving.preflight import check_routers
from routing.serving.resilience import close_stream
from routing.settings import ConfigError

T = TypeVar("T")
ConfigSource = AppConfig | Mapping[str, Any] | str | os.PathLike[str] | None


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


class Cursor:
    """An open stream on the engine's loop, read one chunk per call."""

    def __init__(self, chunks: AsyncIterator[protocol.ChatCompletionChunk]) -> None:
        self.chunks = chunks
        self.pull: asyncio.Future[protocol.ChatCompletionChunk | None] | None = None

    async def next(self, timeout: float | None) -> ChatCompletionChunk | None:
        """The next chunk, or None at the end."""
        self.pull = asyncio.ensure_future(anext(self.chunks, None))
        chunk = await answer(self.pull, timeout, stream_error)
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


class EngineThread:
    """The engine and the event loop it runs on, in a daemon thread of its own.

    The upstream clients' connections belong to the loop that opened them, so every call, from
    sync code, from any other loop (a notebook's included) or thread, runs on this one loop and
    is answered through a future."""

    def __init__(self, config: ConfigSource) -> None:
        self.engine: RoutingEngine = in_process_engine(load_config(config))
        self.lock = threading.Lock()
        self.closed = False
        self.cursors: weakref.WeakSet[Cursor] = weakref.WeakSet()  # touched on the loop only
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
    ) -> tuple[dict[str, str], ChatCompletion | Cursor]:
        """The ``x-route-*`` headers, and the completion or, for a stream, its open cursor."""
        conversation = conversation_of(request)
        if request.stream:
            outcome, chunks = await answer(self.engine.stream(request, conversation), timeout, status_error)
            cursor = Cursor(chunks)
            self.cursors.add(cursor)
            return route_headers(outcome), cursor
        outcome, completion = await answer(self.engine.complete(request, conversation), timeout, status_error)
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
