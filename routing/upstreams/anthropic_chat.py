"""A chat completion as Anthropic's Messages API takes it, and its answers back as chat
completions: system and developer messages become ``system``, tool messages ``tool_result``
blocks of a user turn, tool calls ``tool_use`` blocks, and a streamed message's events become
chunks. Anthropic wants user and assistant turns in alternation, so neighbours of one role merge."""

from __future__ import annotations

import json
import time
from typing import Any

from routing.protocol import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    ImagePart,
    TextPart,
    completion_id,
)

FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}
FINISH_REASONS |= {"refusal": "content_filter", "pause_turn": "stop"}
TOOL_CHOICES = {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}}


def messages_body(request: ChatCompletionRequest, model: str, default_max_tokens: int) -> dict[str, Any]:
    system = "\n\n".join(m.text() for m in request.messages if m.role in ("system", "developer"))
    turns: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role in ("system", "developer"):
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += blocks
        else:
            turns.append({"role": role, "content": blocks})
    body: dict[str, Any] = {
        "model": model,
        "messages": turns,
        "max_tokens": request.generation_limit() or default_max_tokens,
    }
    if system:
        body["system"] = system
    if request.stop:
        body["stop_sequences"] = [request.stop] if isinstance(request.stop, str) else request.stop
    if request.temperature is not None:
        body["temperature"] = min(request.temperature, 1.0)  # Anthropic's range is [0, 1]
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.user:
        body["metadata"] = {"user_id": request.user}
    if request.tools:
        body["tools"] = [_tool(tool["function"]) for tool in request.tools if tool.get("type") == "function"]
        choice = _tool_choice(request.tool_choice)
        if request.parallel_tool_calls is False:
            choice = (choice or {"type": "auto"}) | {"disable_parallel_tool_use": True}
        if choice is not None:
            body["tool_choice"] = choice
    return body


def _blocks(message: ChatMessage) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [{"type": "tool_result", "tool_use_id": message.tool_call_id, "content": message.text()}]
    blocks: list[dict[str, Any]] = []
    if isinstance(message.content, str):
        if message.content:
            blocks.append({"type": "text", "text": message.content})
    else:
        for part in message.content or []:
            if isinstance(part, TextPart):
                blocks.append({"type": "text", "text": part.text})
            elif isinstance(part, ImagePart):
                blocks.append({"type": "image", "source": _image_source(part.image_url.url)})
    for call in message.tool_calls or []:
        function = call.get("function") or {}
        blocks.append(
            {"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": _input(function)}
        )
    return blocks


def _image_source(url: str) -> dict[str, Any]:
    if url.startswith("data:") and ";base64," in url:
        media_type, _, data = url[5:].partition(";base64,")
        return {"type": "base64", "media_type": media_type, "data": data}
    return {"type": "url", "url": url}


def _input(function: dict[str, Any]) -> dict[str, Any]:
    try:
        parsed = json.loads(function.get("arguments") or "{}")
    except ValueError:
        return {"arguments": function.get("arguments")}
    return parsed if isinstance(parsed, dict) else {"arguments": parsed}


def _tool(function: dict[str, Any]) -> dict[str, Any]:
    tool = {"name": function["name"], "input_schema": function.get("parameters") or {"type": "object"}}
    return tool | ({"description": function["description"]} if function.get("description") else {})


def _tool_choice(choice: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if isinstance(choice, str):
        return TOOL_CHOICES.get(choice)
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return {"type": "tool", "name": choice["function"].get("name")}
    return None


def chat_completion(message: dict[str, Any], model: str) -> ChatCompletion:
    """An Anthropic message as the chat completion it answers."""
    content = message.get("content") or []
    text = "".join(block.get("text", "") for block in content if block.get("type") == "text")
    calls = [
        {
            "id": b["id"],
            "type": "function",
            "function": {"name": b["name"], "arguments": json.dumps(b.get("input", {}))},
        }
        for b in content
        if b.get("type") == "tool_use"
    ]
    usage = message.get("usage") or {}
    prompt, completion = usage.get("input_tokens", 0), usage.get("output_tokens", 0)
    answer = {"role": "assistant", "content": text or None, **({"tool_calls": calls} if calls else {})}
    finish = FINISH_REASONS.get(message.get("stop_reason") or "end_turn", "stop")
    return ChatCompletion.model_validate(
        {
            "model": model,
            "choices": [{"index": 0, "message": answer, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }
    )


class ChunksOfEvents:
    """A streamed Anthropic message's events as chat completion chunks."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self.model = model
        self.include_usage = include_usage  # a chat stream carries its usage only when asked for
        self.id = completion_id()
        self.created = int(time.time())
        self.tools: dict[int, int] = {}  # content block index → tool call index
        self.prompt_tokens = 0

    def chunks(self, event: dict[str, Any]) -> list[ChatCompletionChunk]:
        kind = event.get("type")
        if kind == "message_start":
            usage = (event.get("message") or {}).get("usage") or {}
            self.prompt_tokens = usage.get("input_tokens", 0)
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start" and (event.get("content_block") or {}).get("type") == "tool_use":
            block = event["content_block"]
            self.tools[event.get("index", 0)] = len(self.tools)
            opened = {"index": self.tools[event.get("index", 0)], "id": block.get("id"), "type": "function"}
            return [self._chunk({"tool_calls": [opened | {"function": {"name": block.get("name"), "arguments": ""}}]})]
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta":
                return [self._chunk({"content": delta.get("text", "")})]
            if delta.get("type") == "input_json_delta":
                call = {
                    "index": self.tools.get(event.get("index", 0), 0),
                    "function": {"arguments": delta.get("partial_json", "")},
                }
                return [self._chunk({"tool_calls": [call]})]
        if kind == "message_delta":
            stop = (event.get("delta") or {}).get("stop_reason")
            output = (event.get("usage") or {}).get("output_tokens", 0)
            usage = {"prompt_tokens": self.prompt_tokens, "completion_tokens": output}
            usage["total_tokens"] = self.prompt_tokens + output
            ended = [self._chunk({}, FINISH_REASONS.get(stop or "end_turn", "stop"))]
            if self.include_usage:
                ended.append(ChatCompletionChunk.model_validate(
                    {"id": self.id, "created": self.created, "model": self.model, "choices": [], "usage": usage}
                ))  # fmt: skip
            return ended
        return []

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> ChatCompletionChunk:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return ChatCompletionChunk.model_validate(
            {"id": self.id, "created": self.created, "model": self.model, "choices": [choice]}
        )
