"""A request body that fails validation, described as OpenAI does: one message, and the path of
the first bad field as ``param``. The HTTP service and the in-process client both use it, so a
bad request reads the same whichever way it came in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from routing.config import Limits
from routing.errors import InvalidRequest
from routing.protocol import ChatMessage


def check_limits(limits: Limits, messages: Sequence[ChatMessage]) -> None:
    """Refuses a conversation longer than the service takes, in messages or in characters."""
    if len(messages) > limits.max_messages:
        raise InvalidRequest(
            f"{len(messages)} messages is more than this service takes ({limits.max_messages})",
            param="messages",
            code="too_many_messages",
        )
    chars = sum(len(m.text()) for m in messages)
    if chars > limits.max_prompt_chars:
        raise InvalidRequest(
            f"the messages hold {chars} characters of text, more than this service takes ({limits.max_prompt_chars})",
            param="messages",
            code="context_length_exceeded",
        )


def field_path(loc: tuple[Any, ...], body: Any) -> str | None:
    """The client's own path to the bad value, e.g. ``messages[0].role``.

    Pydantic's locations also name union branches (``str``, ``list[...]``, tags); walking the
    submitted body alongside the location keeps only the parts that really index into it.
    """
    parts: list[Any] = []
    node = body
    steps = [p for p in loc if p != "body"]
    for i, part in enumerate(steps):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        elif not (i == len(steps) - 1 and isinstance(node, dict)):
            continue  # a union branch's label, not a key of the body
        parts.append(part)
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
    return text or None


def describe(errors: list[dict[str, Any]], body: Any) -> tuple[str, str | None]:
    """The message for pydantic's ``errors`` about ``body`` (at most five of them), and the
    path of the first bad field."""
    by_path: dict[str | None, list[str]] = {}
    for error in errors:
        path = field_path(tuple(error["loc"]), body)
        if error["type"] == "json_invalid":
            reason = error.get("ctx", {}).get("error", "decode error")
            return f"the request body is not valid JSON ({reason})", None
        if error["type"] == "extra_forbidden":
            message = f"Unrecognized request argument supplied: {path}"
        elif path is None and error["type"] == "value_error":
            message = str(error["msg"]).removeprefix("Value error, ")
        elif path is None:
            message = "the request body must be a JSON object (Content-Type: application/json)"
        else:
            message = f"'{path}': " + str(error["msg"]).removeprefix("Value error, ")
        if message not in by_path.setdefault(path, []):
            by_path[path].append(message)
    first = next(iter(by_path), None)
    messages = [m for ms in by_path.values() for m in ms]
    return "; ".join(messages[:5]) or "invalid request", first


def invalid_request(errors: list[dict[str, Any]], body: Any) -> InvalidRequest:
    """The 400 error for a body that failed validation."""
    message, param = describe(errors, body)
    return InvalidRequest(message, param=param, code="invalid_request")
