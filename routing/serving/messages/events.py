"""A streamed chat completion as Anthropic's event stream: ``message_start``, each content block
started, filled by deltas (``text_delta``, a tool's ``input_json_delta``) and stopped, then
``message_delta`` with the stop reason and ``message_stop``. A failure once events are flowing
ends the stream with an ``error`` event."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from routing.errors import ServiceError
from routing.protocol import ChatCompletionChunk
from routing.serving.event_stream import Event
from routing.serving.messages.protocol import MessageObject, Usage, error_object
from routing.serving.messages.translate import stop_reason


@dataclass
class MessageEvents:
    """Turns one stream's chunks into events."""

    message: MessageObject = field(
        default_factory=lambda: MessageObject(
            model="", content=[], stop_reason=None, usage=Usage(input_tokens=0, output_tokens=0)
        )
    )
    _block: int = -1
    _open: str | None = None  # the open block's kind: text, or the index of the tool call it is
    _finish_reason: str | None = None

    def start(self, model: str) -> list[Event]:
        self.message.model = model
        return [{"type": "message_start", "message": self.message.model_dump(mode="json")}]

    def feed(self, chunk: ChatCompletionChunk) -> list[Event]:
        events: list[Event] = []
        if chunk.usage is not None:
            self.message.usage = Usage(
                input_tokens=chunk.usage.prompt_tokens, output_tokens=chunk.usage.completion_tokens
            )
        for choice in chunk.choices[:1]:
            if choice.delta.content:
                if self._open != "text":
                    events += self._start_block({"type": "text", "text": ""}, "text")
                events.append(self._delta({"type": "text_delta", "text": choice.delta.content}))
            for call in choice.delta.tool_calls or []:
                opens = f"tool:{call.get('index', 0)}"
                function = call.get("function") or {}
                if self._open != opens:
                    block = {
                        "type": "tool_use",
                        "id": call.get("id", ""),
                        "name": function.get("name", ""),
                        "input": {},
                    }
                    events += self._start_block(block, opens)
                if function.get("arguments"):
                    events.append(self._delta({"type": "input_json_delta", "partial_json": function["arguments"]}))
            if choice.finish_reason:
                self._finish_reason = choice.finish_reason
        return events

    def finish(self) -> list[Event]:
        delta = {"stop_reason": stop_reason(self._finish_reason), "stop_sequence": None}
        usage = self.message.usage.model_dump(exclude_none=True)
        return [
            *self._stop_block(),
            {"type": "message_delta", "delta": delta, "usage": usage},
            {"type": "message_stop"},
        ]

    def fail(self, error: ServiceError) -> list[Event]:
        return [error_object(error.status_code, error.message).model_dump()]

    def _start_block(self, block: dict[str, Any], kind: str) -> list[Event]:
        events = self._stop_block()
        self._block += 1
        self._open = kind
        events.append({"type": "content_block_start", "index": self._block, "content_block": block})
        return events

    def _delta(self, delta: dict[str, Any]) -> Event:
        return {"type": "content_block_delta", "index": self._block, "delta": delta}

    def _stop_block(self) -> list[Event]:
        if self._open is None:
            return []
        self._open = None
        return [{"type": "content_block_stop", "index": self._block}]
