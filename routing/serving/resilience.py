"""Calling one upstream model with time limits, retries and a circuit breaker.

    call ─► breaker open? ─► CircuitOpen (at once)
              │ no
              ▼
           attempt ─(within first_token_s / what is left of total_s)─► answer
              │ retriable failure (429, 5xx, connection) and time left
              └─► wait: exponential backoff, full jitter, or the upstream's Retry-After ─► attempt

Everything here raises :class:`~routing.errors.UpstreamError`; the engine decides whether to
switch models. A stream is retried only until its first token: after that, bytes may already
be on their way to the client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_any,
    wait_random_exponential,
)

from routing.config import AppConfig
from routing.errors import CircuitOpen, UpstreamError, UpstreamTimeout
from routing.protocol import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest
from routing.serving.telemetry import NO_TELEMETRY, Telemetry
from routing.upstreams import ChatBackend
from routing.upstreams.config import CircuitBreaker as CircuitBreakerConfig
from routing.upstreams.config import NativeApi, RetryPolicy, Upstream

T = TypeVar("T")
S = TypeVar("S")
OPENING_EVENTS = {"response.created", "response.in_progress", "response.queued", "message_start", "ping"}


class CircuitBreaker:
    """Closed → (``failure_threshold`` failures in a row) → open for ``cooldown_s`` → half-open:
    one trial call passes, its result closes or reopens the circuit."""

    def __init__(self, config: CircuitBreakerConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self.failures = 0
        self.open_until: float | None = None
        self.trial_running = False

    @property
    def state(self) -> str:
        if self.open_until is None:
            return "closed"
        return "open" if self.clock() < self.open_until or self.trial_running else "half_open"

    def admit(self) -> bool:
        """Whether a call may go to the upstream now (taking the trial slot when half-open)."""
        state = self.state
        if state == "half_open":
            self.trial_running = True
        return state != "open"

    def record(self, ok: bool) -> None:
        self.trial_running = False
        if ok:
            self.failures, self.open_until = 0, None
            return
        self.failures += 1
        if self.failures >= self.config.failure_threshold:
            self.open_until = self.clock() + self.config.cooldown_s

    def release(self) -> None:
        """A call that ended without a verdict on the upstream (client gone, request rejected)."""
        self.trial_running = False


class _Backoff:
    """Tenacity's exponential backoff with full jitter, stretched to the upstream's Retry-After."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.jitter = wait_random_exponential(multiplier=policy.backoff_initial_s, max=policy.backoff_max_s)

    def __call__(self, state: RetryCallState) -> float:
        wait = self.jitter(state)
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, UpstreamError) and error.retry_after_s is not None:
            wait = max(wait, error.retry_after_s)
        return wait


class ResilientUpstream:
    """One upstream model as the engine calls it: the backend plus timeouts, retries and a breaker."""

    def __init__(
        self,
        backend: ChatBackend,
        config: Upstream,
        telemetry: Telemetry = NO_TELEMETRY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.model = config.model
        self.config = config
        self.telemetry = telemetry
        self.clock = clock
        self.breaker = CircuitBreaker(config.circuit_breaker, clock)

    async def complete(self, request: ChatCompletionRequest) -> ChatCompletion:
        deadline = self.clock() + self.config.timeouts.total_s
        return await self._attempts(lambda: self._timed(self.backend.complete(request), deadline, "answer"), deadline)

    async def open_stream(self, request: ChatCompletionRequest) -> AsyncIterator[ChatCompletionChunk]:
        """The stream, once its first token has arrived. Nothing reaches the client before that, so
        until then failures are retried and raised here (and the engine may still switch models);
        after it they are raised from the iterator, with the total time limit still applied."""
        return await self._open(lambda: self.backend.stream(request), _carries_output)

    async def call_native(self, api: NativeApi, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` passed through to the upstream's own ``api``, with the same limits as a chat completion."""
        deadline = self.clock() + self.config.timeouts.total_s
        return await self._attempts(lambda: self._timed(self.backend.native(api, body), deadline, "answer"), deadline)

    async def open_native(self, api: NativeApi, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """The upstream's own event stream for ``body``, once an event beyond its opening ones arrived."""
        return await self._open(lambda: self.backend.native_stream(api, body), _native_output)

    async def _open(
        self, start: Callable[[], AsyncIterator[S]], carries_output: Callable[[S], bool]
    ) -> AsyncIterator[S]:
        deadline = self.clock() + self.config.timeouts.total_s

        async def attempt() -> AsyncIterator[S]:
            items = aiter(start())
            first_by = min(deadline, self.clock() + self.config.timeouts.first_token_s)
            try:
                head = await self._timed(_until_first_token(items, carries_output), first_by, "first token")
            except BaseException:
                await close_stream(items)
                raise
            if not head or not carries_output(head[-1]):
                await close_stream(items)
                raise UpstreamError(
                    f"model '{self.model}' ended its stream before the first token",
                    model=self.model,
                    reason="upstream_malformed",
                )
            return self._rest(head, items, deadline)

        return await self._attempts(attempt, deadline)

    async def _attempts(self, attempt: Callable[[], Awaitable[T]], deadline: float) -> T:
        policy = self.config.retry
        retrying = AsyncRetrying(
            # Not against an open circuit: the failure that opened it is the one to report.
            retry=retry_if_exception(
                lambda exc: isinstance(exc, UpstreamError) and exc.retriable and self.breaker.state != "open"
            ),
            wait=_Backoff(policy),
            stop=stop_any(stop_after_attempt(policy.max_retries + 1), lambda state: self._too_late(state, deadline)),
            before_sleep=self._count_retry,
            reraise=True,
        )
        async for try_ in retrying:
            with try_:
                return await self._one_attempt(attempt)
        raise AssertionError("tenacity either returns or reraises")  # pragma: no cover

    def _too_late(self, state: RetryCallState, deadline: float) -> bool:
        """No retry whose wait would end past the deadline, nor one that waits beyond the backoff
        cap because the upstream asked for it: the other model is the better bet then."""
        error = state.outcome.exception() if state.outcome else None
        asked_too_long = (
            isinstance(error, UpstreamError) and (error.retry_after_s or 0) > self.config.retry.backoff_max_s
        )
        return asked_too_long or self.clock() + state.upcoming_sleep >= deadline

    def _count_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        self.telemetry.upstream_retry(self.model, error.reason if isinstance(error, UpstreamError) else "unknown")

    async def _one_attempt(self, attempt: Callable[[], Awaitable[T]]) -> T:
        if not self.breaker.admit():
            raise CircuitOpen(
                f"model '{self.model}' is cooling down after {self.breaker.failures} failures in a row",
                model=self.model,
            )
        started = self.clock()
        try:
            result = await attempt()
        except UpstreamError as exc:
            if exc.counts_against_upstream:
                self.breaker.record(ok=False)
            else:
                self.breaker.release()
            self.telemetry.upstream_call(self.model, self.clock() - started, exc.reason)
            raise
        except BaseException:
            self.breaker.release()
            raise
        self.breaker.record(ok=True)
        self.telemetry.upstream_call(self.model, self.clock() - started, None)
        return result

    async def _timed(self, step: Awaitable[T], deadline: float, what: str) -> T:
        try:
            return await asyncio.wait_for(step, max(0.0, deadline - self.clock()))
        except asyncio.TimeoutError:
            raise UpstreamTimeout(f"model '{self.model}' sent no {what} in time", model=self.model) from None

    async def _rest(self, head: list[S], chunks: AsyncIterator[S], deadline: float) -> AsyncIterator[S]:
        try:
            for chunk in head:
                yield chunk
            while (chunk := await self._timed(anext(chunks, None), deadline, "end of its stream")) is not None:
                yield chunk
        except UpstreamError as exc:
            self.telemetry.upstream_call(self.model, 0.0, exc.reason)
            raise
        finally:
            await close_stream(chunks)


async def _until_first_token(items: AsyncIterator[S], carries_output: Callable[[S], bool]) -> list[S]:
    """The items up to and including the first that carries output (empty if the stream ends first)."""
    head = []
    async for item in items:
        head.append(item)
        if carries_output(item):
            break
    return head


def _carries_output(chunk: ChatCompletionChunk) -> bool:
    """Anything the client would act on: text, a tool call, a refusal, an ending, usage."""
    if chunk.usage is not None:
        return True
    return any(
        c.delta.content or c.delta.tool_calls or c.delta.refusal or c.finish_reason is not None for c in chunk.choices
    )


def _native_output(event: dict[str, Any]) -> bool:
    """Anything beyond an API's opening events (which say only that an answer has begun)."""
    return event.get("type") not in OPENING_EVENTS


async def close_stream(chunks: AsyncIterator[Any]) -> None:
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()


def upstream_order(
    config: AppConfig, ranked: Sequence[str], first_reason: str | None = None
) -> tuple[tuple[str, ...], str | None]:
    """The upstreams to try for a routed request (``ranked``: its candidates, first choice
    first), and why the first choice is skipped, if it is: an unconfigured one is left out (or is
    the only one, when the policy says error), and the others follow the first only when the
    policy lets a failed request fall back."""
    upstreams, policy = config.upstreams, config.fallback
    target = ranked[0]
    configured = tuple(key for key in ranked if upstreams[key].configured)
    falls_back = policy.on_upstream_error == "other_model"
    if upstreams[target].configured:
        return (configured if falls_back else (target,)), first_reason
    if policy.on_unconfigured != "other_model" or not configured:
        return (target,), first_reason
    return (configured if falls_back else configured[:1]), first_reason or "upstream_unconfigured"
