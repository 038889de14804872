"""What the engine keeps of an answer once it is given: its usage and cost in telemetry, and the
request log's line, written before the answer goes out (with the answer's text where
``request_log.answers`` asks for it, so that shadow evaluation asks only the most capable
candidate again)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from routing.config import AppConfig
from routing.protocol import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, RouteDecision, Usage
from routing.routers.kind import Candidate
from routing.serving.request_log import RequestLog
from routing.serving.resilience import close_stream
from routing.serving.telemetry import Telemetry, cost_of

S = TypeVar("S")
TextOf = Callable[[S], str | None]


@dataclass
class Outcome:
    decision: RouteDecision | None
    model: str
    fallback: str | None
    key: str


class AnswerRecorder:
    def __init__(self, config: AppConfig, candidates: Mapping[str, Sequence[Candidate]], telemetry: Telemetry) -> None:
        self.config = config
        self.candidates = candidates
        self.telemetry = telemetry
        self.request_log = RequestLog(config.request_log) if config.request_log else None

    @property
    def keeps_text(self) -> bool:
        return self.config.request_log is not None and self.config.request_log.answers

    async def record(
        self,
        request: ChatCompletionRequest,
        outcome: Outcome,
        usage: Usage | None,
        key_name: str | None,
        text: str | None = None,
    ) -> None:
        cost = None
        if usage is not None:
            router = outcome.decision.router if outcome.decision else None
            most_capable = self.candidates[router][-1].key if router else None
            cost = cost_of(self.config, outcome.key, usage.prompt_tokens, usage.completion_tokens, most_capable)
            self.telemetry.usage(outcome.model, usage.prompt_tokens, usage.completion_tokens, cost, key_name)
        if self.request_log is None:
            return
        written = self.request_log.record(
            request.model,
            request.messages,
            request.stream,
            outcome.decision,
            outcome.model,
            outcome.fallback,
            usage,
            cost,
            key_name,
            text if self.keeps_text else None,
        )
        await asyncio.wrap_future(written)

    async def watch(
        self,
        request: ChatCompletionRequest,
        outcome: Outcome,
        items: AsyncIterator[S],
        usage_of: Callable[[S], Usage | None],
        text_of: TextOf[S] | None,
        key_name: str | None,
    ) -> AsyncIterator[S]:
        """``items`` passed on; the last usage they carry (and their text) recorded as they end."""
        usage, parts = None, []
        keep = self.keeps_text and text_of is not None
        try:
            async for item in items:
                usage = usage_of(item) or usage
                if keep and (part := text_of(item)):  # type: ignore[misc]
                    parts.append(part)
                yield item
        finally:
            await close_stream(items)
            await self.record(request, outcome, usage, key_name, "".join(parts) if keep else None)

    def text(self, text_of: TextOf[S] | None, answer: S) -> str | None:
        return text_of(answer) if self.keeps_text and text_of is not None else None

    async def aclose(self) -> None:
        if self.request_log is not None:
            await asyncio.to_thread(self.request_log.close)


def completion_text(answer: ChatCompletion) -> str | None:
    return answer.choices[0].message.content if answer.choices else None


def chunk_text(chunk: ChatCompletionChunk) -> str | None:
    return chunk.choices[0].delta.content if chunk.choices else None
