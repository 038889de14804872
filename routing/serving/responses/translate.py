"""A Responses request as the chat completion an upstream answers, and that answer as a
response object: input items become messages (function calls join their assistant turn, their
outputs become tool messages), function tools become chat tools, and the answer's text and tool
calls become output items."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from routing.errors import InvalidRequest
from routing.protocol import AssistantMessage, ChatCompletion, ChatCompletionRequest, ChatMessage, Usage
from routing.serving.responses.protocol import (
    Content,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputFile,
    InputImage,
    InputItem,
    MessageItem,
    ReasoningItem,
    Refusal,
    ResponseObject,
    ResponsesRequest,
    ResponseUsage,
    new_id,
)

TOOL_CHOICES = ("auto", "none", "required")
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def input_messages(request: ResponsesRequest) -> list[ChatMessage]:
    """The request's own input as chat messages (without its instructions or earlier responses)."""
    if isinstance(request.input, str):
        return [ChatMessage(role="user", content=request.input)]
    turns: list[dict[str, Any]] = []
    for index, item in enumerate(request.input):
        _add_item(turns, item, f"input[{index}]")
    return [ChatMessage.model_validate(turn) for turn in turns]


def _add_item(turns: list[dict[str, Any]], item: InputItem, where: str) -> None:
    if isinstance(item, MessageItem):
        turns.append({"role": item.role, "content": _content(item.content, item.role, where)})
    elif isinstance(item, FunctionCallItem):
        call = {"id": item.call_id, "type": "function", "function": {"name": item.name, "arguments": item.arguments}}
        last = turns[-1] if turns else None
        if last is not None and last["role"] == "assistant":  # calls made in one turn travel together
            last.setdefault("tool_calls", []).append(call)
        else:
            turns.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif isinstance(item, FunctionCallOutputItem):
        output = item.output if isinstance(item.output, str) else _text(item.output)
        turns.append({"role": "tool", "tool_call_id": item.call_id, "content": output})
    else:
        assert isinstance(item, ReasoningItem)  # readable only by the model that wrote it


def _content(content: str | Sequence[Content], role: str, where: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if role != "user":
        return _text(content)
    parts: list[dict[str, Any]] = []
    for index, part in enumerate(content):
        at = f"{where}.content[{index}]"
        if isinstance(part, InputImage):
            if part.image_url is None:
                raise InvalidRequest(f"'{at}': images are taken by 'image_url' here, not by file_id", param=at)
            parts.append({"type": "image_url", "image_url": {"url": part.image_url, "detail": part.detail}})
        elif isinstance(part, InputFile):
            if part.file_data is None:
                raise InvalidRequest(f"'{at}': files are taken by 'file_data' here", param=at)
            parts.append({"type": "file", "file": {"file_data": part.file_data, "filename": part.filename or "file"}})
        elif isinstance(part, Refusal):
            parts.append({"type": "text", "text": part.refusal})
        else:
            parts.append({"type": "text", "text": part.text})
    return parts


def _text(content: Sequence[Content]) -> str:
    return "\n".join(
        part.refusal if isinstance(part, Refusal) else part.text
        for part in content
        if not isinstance(part, InputImage | InputFile)
    )


def chat_request(request: ResponsesRequest, messages: list[ChatMessage], stream: bool) -> ChatCompletionRequest:
    """The chat completion ``request`` asks for, over ``messages`` (earlier turns and its input)."""
    system = [ChatMessage(role="system", content=request.instructions)] if request.instructions else []
    params: dict[str, Any] = {
        "max_completion_tokens": request.max_output_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "parallel_tool_calls": request.parallel_tool_calls,
        "metadata": request.metadata,
        "user": request.user,
        "safety_identifier": request.safety_identifier,
        "prompt_cache_key": request.prompt_cache_key,
        "service_tier": request.service_tier,
        "tools": [_tool(tool, index) for index, tool in enumerate(request.tools)] if request.tools else None,
        "tool_choice": _tool_choice(request.tool_choice),
    }
    if request.top_logprobs:
        params |= {"logprobs": True, "top_logprobs": request.top_logprobs}
    if request.reasoning is not None and request.reasoning.effort is not None:
        params["reasoning_effort"] = request.reasoning.effort
    if request.text is not None:
        params |= {"response_format": _response_format(request), "verbosity": request.text.verbosity}
    if stream:
        params |= {"stream": True, "stream_options": {"include_usage": True}}
    given = {name: value for name, value in params.items() if value is not None}
    return ChatCompletionRequest.model_validate({"model": request.model, "messages": [*system, *messages], **given})


def _tool(tool: dict[str, Any], index: int) -> dict[str, Any]:
    kind = tool.get("type")
    if kind != "function":
        raise InvalidRequest(
            f"'tools[{index}].type': '{kind}' tools are not served here; function tools are",
            param=f"tools[{index}].type",
        )
    if not isinstance(tool.get("name"), str) or not tool["name"]:
        raise InvalidRequest(f"'tools[{index}].name': a function tool needs a name", param=f"tools[{index}].name")
    function = {key: tool[key] for key in ("name", "description", "parameters", "strict") if tool.get(key) is not None}
    return {"type": "function", "function": function}


def _tool_choice(choice: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
    if choice is None or choice in TOOL_CHOICES:
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise InvalidRequest(
        '\'tool_choice\': one of auto, none, required, or {"type": "function", "name": ...}', param="tool_choice"
    )


def _response_format(request: ResponsesRequest) -> dict[str, Any] | None:
    assert request.text is not None
    text_format = request.text.format
    if text_format is None or text_format.type == "text":
        return None
    if text_format.type == "json_object":
        return {"type": "json_object"}
    if not text_format.name or text_format.schema_ is None:
        raise InvalidRequest("'text.format': a json_schema format needs 'name' and 'schema'", param="text.format")
    schema = {"name": text_format.name, "schema": text_format.schema_}
    schema |= {key: value for key in ("description", "strict") if (value := getattr(text_format, key)) is not None}
    return {"type": "json_schema", "json_schema": schema}


def output_items(message: AssistantMessage) -> list[dict[str, Any]]:
    """An assistant's chat message as Responses output items: its text, then its function calls."""
    items: list[dict[str, Any]] = []
    if message.content or message.refusal:
        items.append(message_item(message.content or "", message.refusal))
    items += [
        function_call_item(call["id"], call["function"]["name"], call["function"]["arguments"])
        for call in message.tool_calls or []
    ]
    return items


def message_item(
    text: str, refusal: str | None = None, status: str = "completed", id_: str | None = None
) -> dict[str, Any]:
    content = [{"type": "refusal", "refusal": refusal}] if refusal else [output_text(text)]
    return {"type": "message", "id": id_ or new_id("msg"), "status": status, "role": "assistant", "content": content}


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_call_item(
    call_id: str, name: str, arguments: str, status: str = "completed", id_: str | None = None
) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": id_ or new_id("fc"),
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def response_object(
    request: ResponsesRequest, model: str, output: list[dict[str, Any]], finish_reason: str | None, usage: Usage | None
) -> ResponseObject:
    """The response object for an answer of ``output``, echoing the request's settings."""
    reason = INCOMPLETE.get(finish_reason or "")
    return ResponseObject(
        status="incomplete" if reason else "completed",
        incomplete_details={"reason": reason} if reason else None,
        model=model,
        output=output,
        usage=response_usage(usage) if usage else None,
        **echoed(request),
    )


def echoed(request: ResponsesRequest) -> dict[str, Any]:
    """What a response object repeats of its request."""
    fields = {
        "instructions": request.instructions,
        "metadata": request.metadata or {},
        "parallel_tool_calls": request.parallel_tool_calls is not False,
        "previous_response_id": request.previous_response_id,
        "store": request.store,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_output_tokens": request.max_output_tokens,
        "tool_choice": request.tool_choice or "auto",
        "tools": request.tools or [],
        "user": request.user,
    }
    if request.text is not None and request.text.format is not None:
        fields["text"] = {"format": request.text.format.model_dump(by_alias=True, exclude_none=True)}
    if request.truncation is not None:
        fields["truncation"] = request.truncation
    return fields


def response_usage(usage: Usage) -> ResponseUsage:
    return ResponseUsage(
        input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens, total_tokens=usage.total_tokens
    )


def answered(request: ResponsesRequest, completion: ChatCompletion) -> ResponseObject:
    """A chat completion as the response object."""
    choice = completion.choices[0]
    return response_object(
        request, completion.model, output_items(choice.message), choice.finish_reason, completion.usage
    )


def assistant_of(output: list[dict[str, Any]]) -> AssistantMessage:
    """A response's output items as the assistant's chat message, which a later turn continues from."""
    texts = [
        part.get("text", "")
        for item in output
        if item.get("type") == "message"
        for part in item.get("content") or []
        if part.get("type") == "output_text"
    ]
    calls = [
        {"id": i["call_id"], "type": "function", "function": {"name": i["name"], "arguments": i.get("arguments", "")}}
        for i in output
        if i.get("type") == "function_call"
    ]
    return AssistantMessage(content="".join(texts) if texts else None, tool_calls=calls or None)


def input_items(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    """Chat messages as Responses input items: how a conversation stored here is sent to an
    upstream that speaks Responses itself and never saw it."""
    items: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "tool":
            items.append({"type": "function_call_output", "call_id": message.tool_call_id, "output": message.text()})
            continue
        if message.content:
            if message.role == "assistant":
                content: Any = [output_text(message.text())]
            elif isinstance(message.content, str):
                content = message.content
            else:
                content = [_input_part(part.model_dump()) for part in message.content]
            items.append({"type": "message", "role": message.role, "content": content})
        items += [
            {"type": "function_call", "call_id": c["id"], "name": c["function"]["name"],
             "arguments": c["function"].get("arguments", "")}
            for c in message.tool_calls or []
        ]  # fmt: skip
    return items


def _input_part(part: dict[str, Any]) -> dict[str, Any]:
    if part["type"] == "image_url":
        return {
            "type": "input_image",
            "image_url": part["image_url"]["url"],
            "detail": part["image_url"].get("detail") or "auto",
        }
    if part["type"] == "file":
        return {"type": "input_file", **part["file"]}
    return {"type": "input_text", "text": part.get("text", "")}


def native_body(raw: dict[str, Any], earlier_messages: list[ChatMessage] | None) -> dict[str, Any]:
    """The request as sent to an upstream that speaks Responses itself: unchanged, unless it
    continues a response that upstream did not give (``earlier_messages``): then that
    conversation comes first in its ``input`` instead of the id."""
    if earlier_messages is None:
        return raw
    given = raw["input"] if isinstance(raw["input"], list) else [{"role": "user", "content": raw["input"]}]
    body = {key: value for key, value in raw.items() if key != "previous_response_id"}
    return body | {"input": [*input_items(earlier_messages), *given]}
