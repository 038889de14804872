"""A streamed chat completion as the Responses event stream: ``response.created``, then each
output item opened, filled by deltas and closed (a message's text, each function call's
arguments), then ``response.completed`` (or ``response.incomplete``) with the whole response.
A failure once events are flowing ends the stream with an ``error`` event and ``response.failed``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from routing.errors import ServiceError
from routing.protocol import ChatCompletionChunk, Usage
from routing.serving.responses.protocol import ResponseObject, ResponsesRequest, new_id
from routing.serving.responses.translate import (
    echoed,
    function_call_item,
    message_item,
    output_text,
    response_object,
)


@dataclass
class _OpenCall:
    index: int
    item_id: str
    call_id: str
    name: str
    arguments: str = ""


@dataclass
class ResponseEvents:
    """Turns one stream's chunks into events, keeping the output so far."""

    request: ResponsesRequest
    response_id: str = field(default_factory=lambda: new_id("resp"))
    model: str = ""
    created_at: int = field(default_factory=lambda: int(time.time()))
    output: list[dict[str, Any]] = field(default_factory=list)
    _sequence: int = 0
    _text: str | None = None
    _text_id: str = ""
    _text_index: int = 0
    _refusal: str = ""
    _call: _OpenCall | None = None
    _finish_reason: str | None = None
    _usage: Usage | None = None

    def start(self, model: str) -> list[dict[str, Any]]:
        self.model = model
        skeleton = self._snapshot("in_progress")
        return [
            self._event("response.created", response=skeleton),
            self._event("response.in_progress", response=skeleton),
        ]

    def feed(self, chunk: ChatCompletionChunk) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        if chunk.usage is not None:
            self._usage = chunk.usage
        for choice in chunk.choices[:1]:
            delta = choice.delta
            if delta.content:
                events += self._text_delta(delta.content)
            if delta.refusal:
                events += self._open_text()
                self._refusal += delta.refusal
            for call in delta.tool_calls or []:
                events += self._call_delta(call)
            if choice.finish_reason:
                self._finish_reason = choice.finish_reason
        return events

    def finish(self) -> list[dict[str, Any]]:
        events = self._close_text() + self._close_call()
        response = response_object(self.request, self.model, self.output, self._finish_reason, self._usage)
        response.id, response.created_at = self.response_id, self.created_at
        kind = "response.completed" if response.status == "completed" else "response.incomplete"
        return [*events, self._event(kind, response=response.model_dump(mode="json"))]

    def fail(self, error: ServiceError) -> list[dict[str, Any]]:
        failed = self._snapshot("failed") | {
            "error": {"code": error.code or error.error_type, "message": error.message}
        }
        return [
            self._event("error", code=error.code, message=error.message, param=error.param),
            self._event("response.failed", response=failed),
        ]

    def _snapshot(self, status: str) -> dict[str, Any]:
        response = ResponseObject(
            id=self.response_id, created_at=self.created_at, status=status, model=self.model, output=[]
        )
        return response.model_copy(update=echoed(self.request)).model_dump(mode="json")

    def _event(self, kind: str, **payload: Any) -> dict[str, Any]:
        self._sequence += 1
        return {"type": kind, "sequence_number": self._sequence - 1, **payload}

    def _open_text(self) -> list[dict[str, Any]]:
        if self._text is not None:
            return []
        events = self._close_call()
        self._text, self._text_id, self._text_index = "", new_id("msg"), len(self.output)
        self.output.append(message_item("", status="in_progress", id_=self._text_id) | {"content": []})
        item = self.output[-1]
        return [
            *events,
            self._event("response.output_item.added", output_index=self._text_index, item=item),
            self._event("response.content_part.added", **self._part_at(), part=output_text("")),
        ]

    def _text_delta(self, text: str) -> list[dict[str, Any]]:
        events = self._open_text()
        self._text = (self._text or "") + text
        return [*events, self._event("response.output_text.delta", **self._part_at(), delta=text, logprobs=[])]

    def _part_at(self) -> dict[str, Any]:
        return {"item_id": self._text_id, "output_index": self._text_index, "content_index": 0}

    def _close_text(self) -> list[dict[str, Any]]:
        if self._text is None:
            return []
        item = message_item(self._text, self._refusal or None, id_=self._text_id)
        self.output[self._text_index] = item
        part = item["content"][0]
        done = (
            [self._event("response.output_text.done", **self._part_at(), text=self._text, logprobs=[])]
            if part["type"] == "output_text"
            else []
        )
        self._text = None
        return [
            *done,
            self._event("response.content_part.done", **self._part_at(), part=part),
            self._event("response.output_item.done", output_index=self._text_index, item=item),
        ]

    def _call_delta(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        function = call.get("function") or {}
        index = call.get("index", 0)
        if self._call is None or self._call.index != index:
            events += self._close_text() + self._close_call()
            self._call = _OpenCall(index, new_id("fc"), call.get("id") or new_id("call"), function.get("name") or "")
            item = function_call_item(self._call.call_id, self._call.name, "", "in_progress", self._call.item_id)
            self.output.append(item)
            events.append(self._event("response.output_item.added", output_index=len(self.output) - 1, item=item))
        arguments = function.get("arguments") or ""
        if arguments:
            self._call.arguments += arguments
            at = {"item_id": self._call.item_id, "output_index": len(self.output) - 1}
            events.append(self._event("response.function_call_arguments.delta", **at, delta=arguments))
        return events

    def _close_call(self) -> list[dict[str, Any]]:
        call, self._call = self._call, None
        if call is None:
            return []
        item = function_call_item(call.call_id, call.name, call.arguments, id_=call.item_id)
        index = next(i for i, o in enumerate(self.output) if o.get("id") == call.item_id)
        self.output[index] = item
        at = {"item_id": call.item_id, "output_index": index}
        return [
            self._event("response.function_call_arguments.done", **at, name=call.name, arguments=call.arguments),
            self._event("response.output_item.done", output_index=index, item=item),
        ]
