"""``POST /v1/messages`` over real HTTP with the official ``anthropic`` client: an in-process
engine (the random router: threshold 0 sends to the strong model, 1 to the weak one) served from
a thread, fake upstreams as processes. System prompts, content blocks, tools, tool use and tool
results are translated to chat completions and back; streams follow Anthropic's event sequence;
every failure is answered in Anthropic's error shape; keys come as ``x-api-key`` or bearer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from deployments.openai_http import IngressState
from deployments.service_app import service_app
from routing.config import load_app_config
from routing.serving.auth import ApiKeys
from routing.serving.in_process import in_process_engine
from testing.apps import fake_pair_args
from testing.fake_upstream import FakeUpstream
from testing.local_server import serving

KEY = "sk-messages-1"
TOOL = {"name": "run_tests", "description": "Runs the tests", "input_schema": {"type": "object"}}
USER = {"role": "user", "content": "Run the tests."}
MAX_BODY_BYTES = 200_000


@pytest.fixture(scope="module")
def url(upstreams: dict[str, FakeUpstream]) -> Iterator[str]:
    args = fake_pair_args(
        upstreams["strong"],
        upstreams["weak"],
        routers={"random": {"type": "random"}},
        limits={"max_body_bytes": MAX_BODY_BYTES},
    )
    args["upstreams"]["strong"] |= {"retry": {"max_retries": 0}, "circuit_breaker": {"failure_threshold": 1000}}
    args["upstreams"]["weak"] |= {"retry": {"max_retries": 0}, "circuit_breaker": {"failure_threshold": 1000}}
    engine = in_process_engine(load_app_config(args).resolve_env({}))
    with serving(service_app(engine, IngressState(ApiKeys([KEY])))) as base:
        yield base


@pytest.fixture
def client(url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0, timeout=30)


def sent(server: FakeUpstream) -> dict[str, Any]:
    return server.requests()[-1]["body"]


def test_a_message_with_a_system_prompt_is_answered_as_a_message(
    client: anthropic.Anthropic, strong: FakeUpstream
) -> None:
    raw = client.messages.with_raw_response.create(
        model="router-random-0",
        max_tokens=64,
        system=[{"type": "text", "text": "Be brief."}],
        messages=[{"role": "user", "content": "Name a prime."}],
        stop_sequences=["\n\n"],
        metadata={"user_id": "user-7"},
        output_config={"effort": "max", "format": {"type": "json_schema", "schema": {"type": "object"}}},
        cache_control={"type": "ephemeral"},
        extra_body={"temperature": 0.2},  # older clients send it; this one no longer does
    )
    message = raw.parse()
    assert message.content[0].type == "text" and message.content[0].text == "strong answer #1"
    assert (message.model, message.stop_reason, message.usage.input_tokens, message.usage.output_tokens) == (
        "big", "end_turn", 5, 4,
    )  # fmt: skip
    assert raw.headers["x-route-target"] == "big" and raw.headers["x-route-session"].startswith("user:user-7/")
    assert sent(strong) == {
        "model": "big",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a prime."}],
        "max_completion_tokens": 64,
        "stop": ["\n\n"],
        "temperature": 0.2,
        "user": "user-7",
        "reasoning_effort": "xhigh",
        "response_format": {"type": "json_schema", "json_schema": {"name": "output", "schema": {"type": "object"}}},
    }


def test_a_tool_use_and_its_result_stay_on_the_model_that_called(
    client: anthropic.Anthropic, strong: FakeUpstream, weak: FakeUpstream
) -> None:
    strong.behave(call_tools=True)
    first = client.messages.create(model="router-random-0", max_tokens=64, messages=[USER], tools=[TOOL])  # type: ignore[list-item]
    (use,) = first.content
    assert first.stop_reason == "tool_use" and use.type == "tool_use" and use.input == {"step": 1}
    assert sent(strong)["tools"] == [
        {"type": "function", "function": {"name": "run_tests", "parameters": {"type": "object"},
                                          "description": "Runs the tests"}}
    ]  # fmt: skip
    result = {"type": "tool_result", "tool_use_id": use.id, "content": [{"type": "text", "text": "3 passed"}]}
    loop = [
        USER,
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [result]},
    ]
    raw = client.messages.with_raw_response.create(model="router-random-1", max_tokens=64, messages=loop, tools=[TOOL])  # type: ignore[arg-type,list-item]
    assert raw.headers["x-route-decided"] == "inherited" and raw.parse().content[0].text == "strong answer #2"  # type: ignore[union-attr]
    assert sent(strong)["messages"][1:] == [
        {"role": "assistant", "tool_calls": [
            {"id": use.id, "type": "function", "function": {"name": "run_tests", "arguments": '{"step": 1}'}}]},
        {"role": "tool", "tool_call_id": use.id, "content": "3 passed"},
    ]  # fmt: skip
    assert not weak.requests()


def test_images_travel_as_image_parts_and_thinking_is_not_sent_on(
    client: anthropic.Anthropic, strong: FakeUpstream
) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
    messages: list[Any] = [
        {"role": "user", "content": [{"type": "text", "text": "What is this?"}, image]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": "s"},
                                          {"type": "text", "text": "A pixel."}]},
        {"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]},
    ]  # fmt: skip
    client.messages.create(model="big", max_tokens=16, messages=messages)
    assert sent(strong)["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
        {"role": "assistant", "content": "A pixel."},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
    ]  # fmt: skip


def test_a_streamed_message_follows_anthropics_event_sequence(
    client: anthropic.Anthropic, strong: FakeUpstream
) -> None:
    with client.messages.stream(model="router-random-0", max_tokens=64, messages=[USER]) as stream:
        events = list(stream)
        final = stream.get_final_message()
        assert stream.response.headers["x-route-target"] == "big"
    assert [e.type for e in events if e.type not in ("text",)] == [
        "message_start", "content_block_start", *["content_block_delta"] * 4, "content_block_stop",
        "message_delta", "message_stop",
    ]  # fmt: skip
    assert final.content[0].text == "strong answer #1" and final.stop_reason == "end_turn"  # type: ignore[union-attr]
    assert (final.usage.input_tokens, final.usage.output_tokens) == (5, 4)


def test_a_streamed_tool_use_comes_as_input_json_deltas(client: anthropic.Anthropic, strong: FakeUpstream) -> None:
    strong.behave(call_tools=True)
    with client.messages.stream(model="router-random-0", max_tokens=64, messages=[USER], tools=[TOOL]) as stream:  # type: ignore[list-item]
        events = list(stream)
        final = stream.get_final_message()
    partial = [e.delta.partial_json for e in events if e.type == "content_block_delta"]  # type: ignore[union-attr]
    assert partial == ['{"step', '": 1}']
    (use,) = final.content
    assert use.type == "tool_use" and use.name == "run_tests" and use.input == {"step": 1}
    assert final.stop_reason == "tool_use"


def test_a_stream_cut_after_its_first_token_ends_with_an_error_event(
    client: anthropic.Anthropic, strong: FakeUpstream
) -> None:
    strong.behave("cut", cut_after=2)
    with pytest.raises(anthropic.APIStatusError) as cut:
        with client.messages.stream(model="big", max_tokens=64, messages=[USER]) as stream:
            for _ in stream:
                pass
    assert cut.value.body == {
        "type": "error",
        "error": {"type": "api_error", "message": cut.value.body["error"]["message"]},
    }  # type: ignore[index]
    assert "big" in cut.value.body["error"]["message"]  # type: ignore[index]


def test_keys_come_as_x_api_key_or_bearer(url: str) -> None:
    body = {"model": "big", "max_tokens": 8, "messages": [USER]}
    for headers in ({"x-api-key": KEY}, {"authorization": f"Bearer {KEY}"}):
        assert httpx.post(f"{url}/v1/messages", json=body, headers=headers).status_code == 200
    bearer = anthropic.Anthropic(base_url=url, auth_token=KEY, max_retries=0)
    assert bearer.messages.create(model="big", max_tokens=8, messages=[USER]).model == "big"  # type: ignore[list-item]
    for headers in ({}, {"x-api-key": "wrong"}):
        refused = httpx.post(f"{url}/v1/messages", json=body, headers=headers)
        assert refused.status_code == 401
        assert refused.json()["type"] == "error" and refused.json()["error"]["type"] == "authentication_error"


BAD = [
    ("no max_tokens", {"messages": [USER]}, 400, "max_tokens"),
    ("unknown field", {"max_tokens": 8, "messages": [USER], "temprature": 1}, 400, "temprature"),
    ("server tool", {"max_tokens": 8, "messages": [USER], "tools": [{"type": "web_search_20250305", "name": "s"}]},
     400, "tools[0].type"),
    ("bad block", {"max_tokens": 8, "messages": [{"role": "user", "content": [{"type": "video"}]}]}, 400, "messages"),
    ("bad role", {"max_tokens": 8, "messages": [{"role": "system", "content": "x"}]}, 400, "role"),
    ("empty messages", {"max_tokens": 8, "messages": []}, 400, "messages"),
    ("too many stops", {"max_tokens": 8, "messages": [USER], "stop_sequences": ["a", "b", "c", "d", "e"]}, 400,
     "stop_sequences"),
    ("tool choice without name", {"max_tokens": 8, "messages": [USER], "tool_choice": {"type": "tool"}}, 400, "name"),
    ("unknown model", {"model": "claude-nothing", "max_tokens": 8, "messages": [USER]}, 404, "claude-nothing"),
    ("too large", {"max_tokens": 8, "messages": [{"role": "user", "content": "x" * MAX_BODY_BYTES}]}, 413, "larger"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "body", "status", "named"), BAD, ids=[case for case, *_ in BAD])
def test_bad_input_is_answered_in_anthropics_error_shape(
    url: str, case: str, body: dict[str, Any], status: int, named: str
) -> None:
    request = {"model": "router-random-0", **body}
    response = httpx.post(f"{url}/v1/messages", json=request, headers={"x-api-key": KEY})
    assert response.status_code == status, response.text
    error = response.json()
    assert set(error) == {"type", "error"} and error["type"] == "error" and set(error["error"]) == {"type", "message"}
    expected = {400: "invalid_request_error", 404: "not_found_error", 413: "request_too_large"}[status]
    assert error["error"]["type"] == expected and named in error["error"]["message"], error


def test_a_bad_version_header_and_a_failing_upstream_are_answered_in_anthropics_shape(
    url: str, strong: FakeUpstream, weak: FakeUpstream
) -> None:
    body = {"model": "big", "max_tokens": 8, "messages": [USER]}
    old = httpx.post(f"{url}/v1/messages", json=body, headers={"x-api-key": KEY, "anthropic-version": "june"})
    assert old.status_code == 400 and "anthropic-version" in old.json()["error"]["message"]
    strong.behave("status", status=500)
    weak.behave("status", status=500)
    failed = httpx.post(f"{url}/v1/messages", json=body | {"model": "router-random-0"}, headers={"x-api-key": KEY})
    assert failed.status_code == 502 and failed.json()["error"]["type"] == "api_error"
    assert "fallback failed too" in failed.json()["error"]["message"]
    strong.behave("ok")
    answered = httpx.post(f"{url}/v1/messages", json=body | {"model": "router-random-1"}, headers={"x-api-key": KEY})
    # the weak model fails, the strong one answers: the fallback, said in the header
    assert answered.status_code == 200 and answered.headers["x-route-fallback"] and answered.json()["model"] == "big"
    unknown = httpx.get(f"{url}/v1/messages/batches", headers={"x-api-key": KEY})
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "not_found_error"
