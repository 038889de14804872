"""A Messages request as the chat completion an upstream answers, and that answer as a message:
``system`` becomes the system message, ``tool_result`` blocks become tool messages, ``tool_use``
blocks become the assistant's tool calls (and back), images travel as image parts, and the chat
finish reasons become Anthropic's stop reasons."""

from __future__ import annotations

import json
import logging
from typing import Any

from routing.errors import InvalidRequest
from routing.protocol import AssistantMessage, ChatCompletion, ChatCompletionRequest
from routing.protocol import Usage as ChatUsage
from routing.serving.messages.protocol import (
    DocumentBlock,
    ImageBlock,
    InputMessage,
    MessageObject,
    MessagesRequest,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)

logger = logging.getLogger(__name__)
MAX_STOP_SEQUENCES = 4  # what chat completions take
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use"}
STOP_REASONS |= {"content_filter": "refusal"}
TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


def chat_request(request: MessagesRequest, stream: bool) -> ChatCompletionRequest:
    if request.stop_sequences and len(request.stop_sequences) > MAX_STOP_SEQUENCES:
        raise InvalidRequest(f"stop_sequences: at most {MAX_STOP_SEQUENCES} are taken here", param="stop_sequences")
    system = request.system if isinstance(request.system, str) else "\n".join(b.text for b in request.system or [])
    turns: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for index, message in enumerate(request.messages):
        turns += _turns(message, f"messages[{index}]")
    params: dict[str, Any] = {
        "max_completion_tokens": request.max_tokens,
        "stop": request.stop_sequences or None,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "user": request.metadata.user_id if request.metadata else None,
        "tools": [_tool(tool, index) for index, tool in enumerate(request.tools)] if request.tools else None,
    }
    if request.mcp_servers:
        raise InvalidRequest(
            "mcp_servers: MCP servers are not served here; send their tools as tools", param="mcp_servers"
        )
    if request.output_config is not None:
        params |= _output_config(request)
    choice = request.tool_choice
    if choice is not None:
        params["tool_choice"] = TOOL_CHOICES.get(choice.type) or {"type": "function", "function": {"name": choice.name}}
        if choice.disable_parallel_tool_use:
            params["parallel_tool_calls"] = False
    if stream:
        params |= {"stream": True, "stream_options": {"include_usage": True}}
    given = {name: value for name, value in params.items() if value is not None}
    return ChatCompletionRequest.model_validate({"model": request.model, "messages": turns, **given})


def _turns(message: InputMessage, where: str) -> list[dict[str, Any]]:
    if isinstance(message.content, str):
        return [{"role": message.role, "content": message.content}]
    if message.role == "assistant":
        text = "".join(b.text for b in message.content if isinstance(b, TextBlock))
        calls = [
            {"id": b.id, "type": "function", "function": {"name": b.name, "arguments": json.dumps(b.input)}}
            for b in message.content
            if isinstance(b, ToolUseBlock)
        ]
        return [{"role": "assistant", "content": text or None, "tool_calls": calls or None}] if text or calls else []
    turns: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for index, block in enumerate(message.content):
        if isinstance(block, ToolResultBlock):
            # Chat's tool messages carry text: a result's images follow in the user turn.
            content = block.content if isinstance(block.content, str) else _text(block.content or [])
            turns.append({"role": "tool", "tool_call_id": block.tool_use_id, "content": content})
            if not isinstance(block.content, str):
                parts += [_image(b) for b in block.content or [] if isinstance(b, ImageBlock)]
        elif isinstance(block, TextBlock):
            parts.append({"type": "text", "text": block.text})
        elif isinstance(block, ImageBlock):
            parts.append(_image(block))
        elif isinstance(block, DocumentBlock):
            parts.append(_document(block, f"{where}.content[{index}]"))
        elif isinstance(block, ToolUseBlock):
            raise InvalidRequest(f"'{where}.content[{index}]': tool_use blocks come from the assistant", param=where)
        else:
            assert isinstance(block, ThinkingBlock)
    if parts:
        turns.append({"role": "user", "content": parts})
    return turns


def _output_config(request: MessagesRequest) -> dict[str, Any]:
    config = request.output_config
    assert config is not None
    params: dict[str, Any] = {}
    if config.effort is not None:
        params["reasoning_effort"] = "xhigh" if config.effort == "max" else config.effort
    if config.format is not None:
        params["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": config.format.schema_},
        }
    return params


def _document(block: DocumentBlock, where: str) -> dict[str, Any]:
    source = block.source
    if source.type == "text" and source.data is not None:
        return {"type": "text", "text": source.data}
    if source.type == "base64" and source.data is not None:
        url = f"data:{source.media_type or 'application/pdf'};base64,{source.data}"
        return {"type": "file", "file": {"file_data": url, "filename": block.title or "document"}}
    raise InvalidRequest(f"'{where}': documents are taken as base64 or text sources here", param=where)


def _text(blocks: list[TextBlock | ImageBlock]) -> str:
    return "\n".join(b.text for b in blocks if isinstance(b, TextBlock))


def _image(block: ImageBlock) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": block.source.url_of()}}


def _tool(tool: dict[str, Any], index: int) -> dict[str, Any]:
    kind = tool.get("type")
    if kind not in (None, "custom"):
        raise InvalidRequest(
            f"tools[{index}].type: '{kind}' tools run on Anthropic's servers and are not served here; "
            "client tools (name, description, input_schema) are",
            param=f"tools[{index}].type",
        )
    if not isinstance(tool.get("name"), str) or not tool["name"] or not isinstance(tool.get("input_schema"), dict):
        raise InvalidRequest(f"tools[{index}]: a tool needs 'name' and 'input_schema'", param=f"tools[{index}]")
    function = {"name": tool["name"], "parameters": tool["input_schema"]}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def content_blocks(message: AssistantMessage) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": message.content}] if message.content else []
    for call in message.tool_calls or []:
        function = call.get("function") or {}
        blocks.append(tool_use_block(call.get("id", ""), function.get("name", ""), function.get("arguments") or ""))
    return blocks


def tool_use_block(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": tool_input(arguments)}


def tool_input(arguments: str) -> dict[str, Any]:
    """A tool call's arguments as the object Anthropic's ``input`` is; an upstream's arguments
    that are not a JSON object are kept whole under ``arguments``."""
    try:
        parsed = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        return parsed
    logger.warning("a tool call's arguments are not a JSON object; passed on under 'arguments'")
    return {"arguments": arguments}


def stop_reason(finish_reason: str | None) -> str:
    return STOP_REASONS.get(finish_reason or "stop", "end_turn")


def usage_of(usage: ChatUsage | None) -> Usage:
    if usage is None:
        return Usage(input_tokens=0, output_tokens=0)
    return Usage(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens)


def answered(completion: ChatCompletion) -> MessageObject:
    choice = completion.choices[0]
    return MessageObject(
        model=completion.model,
        content=content_blocks(choice.message),
        stop_reason=stop_reason(choice.finish_reason),  # type: ignore[arg-type]
        usage=usage_of(completion.usage),
    )
