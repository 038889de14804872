"""The fake upstream's own Anthropic Messages API (``POST /v1/messages``) and OpenAI Responses API
(``POST /v1/responses``), for tests of requests passed through unchanged. Answers and faults
follow the server's behaviour as its chat completions do (``"<name> answer #<k>"``, streamed in
``chunks`` pieces; ``status``, ``hang``, ``cut``; ``call_tools``). The Responses API keeps the ids
of the responses it gave and refuses a ``previous_response_id`` it did not give, as OpenAI does."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

Admitted = Callable[[Request], Awaitable[tuple[dict[str, Any], dict[str, Any], Response | None]]]
USAGE = {"input_tokens": 5, "output_tokens": 4}


def add_native_apis(app: FastAPI, name: str, state: dict[str, Any], admitted: Admitted) -> None:
    given: set[str] = set()

    @app.post("/v1/messages")
    async def messages(request: Request) -> Response:
        body, behaviour, failure = await admitted(request)
        if failure is not None:
            return failure
        state["count"] += 1
        count, model = state["count"], body.get("model", name)
        tool = _messages_tool(body) if behaviour.get("call_tools") else None
        text = f"{name} answer #{count}"
        content = (
            [{"type": "tool_use", "id": f"toolu_{name}_{count}", "name": tool, "input": {"step": count}}]
            if tool
            else [{"type": "text", "text": text}]
        )
        stop = "tool_use" if tool else "end_turn"
        message = {"id": f"msg_{name}_{count}", "type": "message", "role": "assistant", "model": model,
                   "content": content, "stop_reason": stop, "stop_sequence": None, "usage": USAGE}  # fmt: skip
        if not body.get("stream"):
            return JSONResponse(message)
        start = message | {"content": [], "stop_reason": None, "usage": {"input_tokens": 5, "output_tokens": 0}}
        if tool:
            block, deltas = (
                content[0] | {"input": {}},
                [{"type": "input_json_delta", "partial_json": json.dumps({"step": count})}],
            )
        else:
            block, deltas = (
                {"type": "text", "text": ""},
                [{"type": "text_delta", "text": p} for p in _pieces(text, behaviour)],
            )
        events = [
            {"type": "message_start", "message": start},
            {"type": "content_block_start", "index": 0, "content_block": block},
            *({"type": "content_block_delta", "index": 0, "delta": d} for d in deltas),
            {"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
             "usage": {"output_tokens": 4}},
            {"type": "message_stop"},
        ]  # fmt: skip
        return _streamed(events, behaviour, opening=2)

    @app.post("/v1/responses")
    async def responses(request: Request) -> Response:
        body, behaviour, failure = await admitted(request)
        if failure is not None:
            return failure
        previous = body.get("previous_response_id")
        if previous is not None and previous not in given:
            error = {"message": f"Previous response with id '{previous}' not found.", "type": "invalid_request_error",
                     "param": "previous_response_id", "code": "previous_response_not_found"}  # fmt: skip
            return JSONResponse({"error": error}, status_code=400)
        state["count"] += 1
        count, model = state["count"], body.get("model", name)
        text, ident = f"{name} answer #{count}", f"resp_{name}_{count}"
        given.add(ident)
        item = {"type": "message", "id": f"msg_{count}", "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}]}  # fmt: skip
        response = {"id": ident, "object": "response", "created_at": 0, "status": "completed", "model": model,
                    "output": [item], "usage": USAGE | {"total_tokens": 9},
                    "previous_response_id": previous}  # fmt: skip
        if not body.get("stream"):
            return JSONResponse(response)
        opened = response | {"status": "in_progress", "output": [], "usage": None}
        at = {"item_id": item["id"], "output_index": 0, "content_index": 0}
        events = [
            {"type": "response.created", "response": opened},
            {"type": "response.output_item.added", "output_index": 0, "item": item | {"content": []}},
            *({"type": "response.output_text.delta", **at, "delta": p} for p in _pieces(text, behaviour)),
            {"type": "response.output_text.done", **at, "text": text},
            {"type": "response.output_item.done", "output_index": 0, "item": item},
            {"type": "response.completed", "response": response},
        ]
        return _streamed([e | {"sequence_number": i} for i, e in enumerate(events)], behaviour, opening=2)


def _messages_tool(body: dict[str, Any]) -> str | None:
    """The first tool's name, when the request offers tools and ends in a user's own words."""
    tools, content = body.get("tools"), body["messages"][-1]["content"]
    if not tools or body["messages"][-1]["role"] != "user":
        return None
    if isinstance(content, list) and any(block.get("type") == "tool_result" for block in content):
        return None
    return tools[0]["name"]


def _pieces(text: str, behaviour: dict[str, Any]) -> list[str]:
    parts = max(1, int(behaviour.get("chunks", 4)))
    size = max(1, -(-len(text) // parts))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _streamed(events: list[dict[str, Any]], behaviour: dict[str, Any], opening: int) -> Response:
    """``events`` as server-sent events; in mode ``cut``, the connection drops after the
    ``opening`` events and ``cut_after`` more."""
    cut = behaviour.get("mode") == "cut"
    stop_at = opening + int(behaviour.get("cut_after", len(events))) if cut else len(events)
    delay = float(behaviour.get("delay_s", 0.0))

    async def sent() -> AsyncIterator[str]:
        for number, event in enumerate(events):
            if number >= stop_at:
                raise ConnectionResetError("stream cut on purpose")
            await asyncio.sleep(delay)
            yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"

    return StreamingResponse(sent(), media_type="text/event-stream")
