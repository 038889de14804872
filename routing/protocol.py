"""The HTTP wire format, in one place: OpenAI chat completions, models, errors, and route decisions.

Requests are validated strictly (no type coercion, unknown fields rejected, as OpenAI does);
responses accept extra fields so that whatever an upstream adds passes through unchanged.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RequestBody(_Request):
    """A whole request body of one of the APIs: strict, and free of unpaired surrogates."""

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        # JSON may escape an unpaired surrogate (\ud800); no upstream or tokenizer can take one.
        reject_unpaired_surrogates(data, "")
        return data


class LenientPart(BaseModel):
    """A part of a request that a client sends back as it received it (an output item, a content
    block): strictly typed, but fields this service does not use are let through, whatever its
    SDK added since."""

    model_config = ConfigDict(extra="ignore", strict=True)


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow")


# ---------------------------------------------------------------- requests


class TextPart(_Request):
    type: Literal["text"]
    text: str


class ImageURL(_Request):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(_Request):
    type: Literal["image_url"]
    image_url: ImageURL


class InputAudio(_Request):
    data: str
    format: str


class AudioPart(_Request):
    type: Literal["input_audio"]
    input_audio: InputAudio


class FilePart(_Request):
    type: Literal["file"]
    file: dict[str, str]


class RefusalPart(_Request):
    type: Literal["refusal"]
    refusal: str


ContentPart = Annotated[TextPart | ImagePart | AudioPart | FilePart | RefusalPart, Field(discriminator="type")]

Role = Literal["system", "developer", "user", "assistant", "tool"]


class ChatMessage(_Request):
    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    refusal: str | None = None

    @model_validator(mode="after")
    def _content_rules(self) -> ChatMessage:
        if self.role in ("system", "developer", "user", "tool") and self.content is None:
            raise ValueError(f"a '{self.role}' message needs 'content'")
        if self.role == "assistant" and self.content is None and not self.tool_calls:
            raise ValueError("an 'assistant' message needs 'content' or 'tool_calls'")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a 'tool' message needs 'tool_call_id'")
        if self.tool_calls is not None and self.role != "assistant":
            raise ValueError("only 'assistant' messages may carry 'tool_calls'")
        return self

    def text(self) -> str:
        """The message's text: the string content, or its text parts joined by newlines."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content if isinstance(part, TextPart))


class StreamOptions(_Request):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class ChatCompletionRequest(RequestBody):
    """POST /v1/chat/completions. ``model`` is an upstream model name or a router alias."""

    model: str = Field(min_length=1, max_length=256)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    n: int | None = Field(default=None, ge=1, le=128)
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    user: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    verbosity: str | None = None

    @model_validator(mode="after")
    def _stop_limit(self) -> ChatCompletionRequest:
        if isinstance(self.stop, list) and len(self.stop) > 4:
            raise ValueError("'stop' takes at most 4 sequences")
        return self

    def generation_limit(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    def upstream_params(self) -> dict[str, Any]:
        """Every set sampling/tool parameter, for forwarding to an upstream API."""
        return self.model_dump(exclude_none=True, exclude={"model", "messages", "stream", "stream_options"})


def reject_unpaired_surrogates(value: Any, path: str) -> None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"'{path.lstrip('.') or 'body'}' holds an unpaired surrogate at index {exc.start}"
            ) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            reject_unpaired_surrogates(key, path)
            reject_unpaired_surrogates(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            reject_unpaired_surrogates(item, f"{path}[{index}]")


# ---------------------------------------------------------------- responses


class AssistantMessage(_Response):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    refusal: str | None = None


class Choice(_Response):
    index: int
    message: AssistantMessage
    finish_reason: str | None = None
    logprobs: dict[str, Any] | None = None


class Usage(_Response):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


class ChatCompletion(_Response):
    id: str = Field(default_factory=completion_id)
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[Choice]
    usage: Usage | None = None


class Delta(_Response):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    refusal: str | None = None


class ChunkChoice(_Response):
    index: int
    delta: Delta
    finish_reason: str | None = None
    logprobs: dict[str, Any] | None = None


class ChatCompletionChunk(_Response):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class RouteDecision(BaseModel):
    """Which model a router picked for a prompt, and why."""

    router: str
    score: float
    threshold: float
    strong_percent: float | None = Field(
        default=None, description="the share of strong calls the threshold holds, if one was asked"
    )
    budget_usd: float | None = Field(
        default=None, description="the budget per request the threshold was chosen for, if one was asked"
    )
    target: str
    fallback: str | None = None
    candidates: dict[str, float] = Field(
        default_factory=dict,
        description="each candidate model, cheapest first, with its predicted probability of answering at "
        "least as well as the most capable one (which has 1)",
    )
    checkpoint: str | None = Field(
        default=None,
        exclude=True,
        description="the router checkpoint that scored, <directory>@<hash of its manifest and table>; "
        "sent as the x-route-checkpoint header, not in the body",
    )
    session: str | None = Field(
        default=None,
        exclude=True,
        description="the conversation the request belongs to, as <source>:<id>; the x-route-session header",
    )
    decided: Literal["fresh", "pinned", "inherited"] | None = Field(
        default=None,
        exclude=True,
        description="fresh: scored now; pinned: the conversation's decision held; inherited: a tool's result "
        "went back to the model that called the tool; the x-route-decided header",
    )
    session_error: str | None = Field(
        default=None,
        exclude=True,
        description="why the session store could not say (the decision is then fresh); x-route-session-error",
    )


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
