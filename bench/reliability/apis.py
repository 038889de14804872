"""The three APIs the service speaks, as the reliability scenarios send to them and judge their
answers: the path, a request body, the error shape a failure must have, and how a stream ends
(its terminator, or an error event in the API's own shape)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

PROMPT = "Explain the difference between a process and a thread."
Event = tuple[str | None, str]  # a server-sent event's name (if it has one) and its data


def chat(model: str, stream: bool = False, **fields: Any) -> dict[str, Any]:
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": PROMPT}], **fields}


def responses(model: str, stream: bool = False, **fields: Any) -> dict[str, Any]:
    return {"model": model, "stream": stream, "input": PROMPT, **fields}


def messages(model: str, stream: bool = False, **fields: Any) -> dict[str, Any]:
    return {
        "model": model,
        "stream": stream,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": PROMPT}],
        **fields,
    }


def _openai_error(body: Any) -> str:
    error = body["error"]
    assert isinstance(error["message"], str) and isinstance(error["type"], str)
    assert set(error) == {"message", "type", "param", "code"}
    return str(error["code"])


def _anthropic_error(body: Any) -> str:
    assert body["type"] == "error" and set(body) == {"type", "error"}
    assert set(body["error"]) == {"type", "message"} and isinstance(body["error"]["message"], str)
    return str(body["error"]["type"])


def _chat_stream(events: list[Event]) -> tuple[str | None, str | None]:
    data = [json.loads(d) for _, d in events if d != "[DONE]"]
    errors = [d["error"] for d in data if "error" in d]
    if errors:
        return f"stream_error {errors[0].get('code')}", None
    return (None, None) if events and events[-1][1] == "[DONE]" else ("stream_error unterminated", "no [DONE]")


def _responses_stream(events: list[Event]) -> tuple[str | None, str | None]:
    errors = [json.loads(d) for name, d in events if name == "error"]
    if errors:
        return f"stream_error {errors[0].get('code')}", None
    done = events and events[-1][0] in ("response.completed", "response.incomplete")
    return (None, None) if done else ("stream_error unterminated", "no response.completed")


def _messages_stream(events: list[Event]) -> tuple[str | None, str | None]:
    errors = [json.loads(d) for name, d in events if name == "error"]
    if errors:
        return f"stream_error {_anthropic_error(errors[0])}", None
    return (
        (None, None) if events and events[-1][0] == "message_stop" else ("stream_error unterminated", "no message_stop")
    )


@dataclass(frozen=True)
class Api:
    name: str
    path: str
    body: Callable[..., dict[str, Any]]
    error_code: Callable[[Any], str]  # the failure's code; raises when the body is not the API's error shape
    stream_end: Callable[[list[Event]], tuple[str | None, str | None]]  # (failure, contract problem)
    shape: str

    def error_problem(self, response: httpx.Response) -> str | None:
        """None when the body is this API's error JSON, else what is wrong with it."""
        try:
            self.error_code(response.json())
        except Exception:
            return f"HTTP {response.status_code} without {self.shape}'s error shape: {response.text[:120]!r}"
        return None


CHAT = Api("chat", "/v1/chat/completions", chat, _openai_error, _chat_stream, "OpenAI")
RESPONSES = Api("responses", "/v1/responses", responses, _openai_error, _responses_stream, "OpenAI")
MESSAGES = Api("messages", "/v1/messages", messages, _anthropic_error, _messages_stream, "Anthropic")
APIS = {api.name: api for api in (CHAT, RESPONSES, MESSAGES)}


def api_at(path: str) -> Api:
    return next((api for api in APIS.values() if path == api.path), CHAT)


def sse_events(lines: list[str]) -> list[Event]:
    events, name = [], None
    for line in lines:
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, line[6:]))
            name = None
    return events
