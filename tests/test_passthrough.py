"""Requests passed through to an upstream that speaks their API itself, and translated for one
that does not, over real HTTP with the official clients: an in-process engine served from a
thread; the strong model on a fake Anthropic Messages API (``backend: anthropic``), the weak one
on a fake OpenAI API that also speaks Responses (``responses_api: true``); the random router
(threshold 0 sends to the strong model, 1 to the weak one)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from deployments.openai_http import IngressState
from deployments.service_app import service_app
from routing.config import load_app_config
from routing.serving.auth import ApiKeys
from routing.serving.in_process import in_process_engine
from testing.apps import on_fake
from testing.fake_upstream import FakeUpstream
from testing.local_server import serving

TOOL = {"type": "function", "function": {"name": "run_tests", "parameters": {"type": "object"}}}
ASK = [{"role": "user", "content": "Name a prime."}]


@pytest.fixture(scope="module")
def url(upstreams: dict[str, FakeUpstream]) -> Iterator[str]:
    strong, weak = upstreams["strong"], upstreams["weak"]
    once = {"timeouts": {"total_s": 5}, "retry": {"max_retries": 0}, "circuit_breaker": {"failure_threshold": 1000}}
    args = {
        "upstreams": {
            "strong": {"backend": "anthropic", "model": "big", "base_url": strong.url, **once},
            "weak": on_fake(weak, "small", responses_api=True, **once),
        },
        "routers": {"random": {"type": "random"}},
    }
    engine = in_process_engine(load_app_config(args).resolve_env({}))
    with serving(service_app(engine, IngressState(ApiKeys([])))) as base:
        yield base


@pytest.fixture
def messages(url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key="none", max_retries=0, timeout=30)


@pytest.fixture
def chat(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=30)


def last(server: FakeUpstream) -> dict[str, Any]:
    return server.requests()[-1]["body"]


def test_a_messages_request_passes_through_to_an_anthropic_upstream_unchanged(
    messages: anthropic.Anthropic, strong: FakeUpstream
) -> None:
    raw = {
        "model": "router-random-0",
        "max_tokens": 64,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": ASK,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "top_k": 5,
    }
    answer = httpx.post(f"{messages.base_url}/v1/messages", json=raw, timeout=30)
    assert answer.status_code == 200 and answer.headers["x-route-target"] == "big"
    assert answer.json()["id"] == "msg_strong_1"  # the upstream's own message, as it came
    assert last(strong) == raw | {"model": "big"}  # everything sent on, the model named as the upstream knows it
    with messages.messages.stream(model="router-random-0", max_tokens=64, messages=ASK) as stream:  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "strong answer #2" and final.usage.output_tokens == 4 and final.id == "msg_strong_2"


def test_a_chat_completion_is_translated_for_an_anthropic_upstream(chat: openai.OpenAI, strong: FakeUpstream) -> None:
    strong.behave(call_tools=True)
    asked = [{"role": "system", "content": "Be brief."}, *ASK]
    completion = chat.chat.completions.create(model="router-random-0", messages=asked, tools=[TOOL], max_tokens=32)  # type: ignore[arg-type,list-item]
    (call,) = completion.choices[0].message.tool_calls or []
    assert completion.choices[0].finish_reason == "tool_calls" and call.function.arguments == '{"step": 1}'
    assert last(strong) == {
        "model": "big",
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Name a prime."}]}],
        "max_tokens": 32,
        "tools": [{"name": "run_tests", "input_schema": {"type": "object"}}],
    }
    result = [
        {"role": "assistant", "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "ok"},
    ]
    chunks = list(chat.chat.completions.create(model="big", messages=[*asked, *result], stream=True))  # type: ignore[arg-type]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "strong answer #2"
    assert last(strong)["messages"][1:] == [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": call.id, "name": "run_tests", "input": {"step": 1}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "ok"}]},
    ]


def test_a_messages_request_is_translated_for_an_openai_upstream_and_falls_back_to_it(
    messages: anthropic.Anthropic, strong: FakeUpstream, weak: FakeUpstream
) -> None:
    answer = messages.messages.with_raw_response.create(model="router-random-1", max_tokens=64, messages=ASK)  # type: ignore[arg-type]
    assert answer.parse().content[0].text == "weak answer #1"  # type: ignore[union-attr]
    assert "max_completion_tokens" in last(weak) and last(weak)["messages"] == ASK  # a chat completion
    strong.behave("status", status=500)
    fell_back = messages.messages.with_raw_response.create(model="router-random-0", max_tokens=64, messages=ASK)  # type: ignore[arg-type]
    assert fell_back.headers["x-route-fallback"] == "upstream_error"
    assert fell_back.parse().model == "small"


def test_a_responses_request_passes_through_and_its_follow_up_keeps_the_upstreams_id(
    chat: openai.OpenAI, weak: FakeUpstream
) -> None:
    first = chat.responses.create(
        model="router-random-1", input="Name a prime.", include=["reasoning.encrypted_content"]
    )
    assert first.id == "resp_weak_1" and first.output_text == "weak answer #1"
    assert last(weak) == {"model": "small", "input": "Name a prime.", "include": ["reasoning.encrypted_content"]}
    events = list(
        chat.responses.create(model="router-random-1", input="Another?", previous_response_id=first.id, stream=True)
    )
    assert [e.type for e in events][-1] == "response.completed"
    assert last(weak)["previous_response_id"] == "resp_weak_1"  # the upstream gave it: passed as it came


def test_a_response_continued_on_another_upstream_carries_its_conversation(
    chat: openai.OpenAI, strong: FakeUpstream, weak: FakeUpstream
) -> None:
    first = chat.responses.create(model="router-random-0", input="Name a prime.", instructions="Be brief.")
    assert first.model == "big" and first.output_text == "strong answer #1"  # translated: Responses → chat → Messages
    later = chat.responses.with_raw_response.create(
        model="router-random-1", input="Another?", previous_response_id=first.id,
        extra_headers={"x-route-stickiness": "off"},
    )  # fmt: skip
    assert later.headers["x-route-target"] == "small" and later.parse().output_text == "weak answer #1"
    sent = last(weak)
    assert "previous_response_id" not in sent  # the upstream never saw that response: its conversation comes instead
    assert sent["input"] == [
        {"type": "message", "role": "user", "content": "Name a prime."},
        {"type": "message", "role": "assistant", "content": [
            {"type": "output_text", "text": "strong answer #1", "annotations": [], "logprobs": []}]},
        {"role": "user", "content": "Another?"},
    ]  # fmt: skip
