"""``POST /v1/responses`` over real HTTP with the official ``openai`` client: an in-process engine
(the random router, which threshold 0 sends to the strong model and threshold 1 to the weak one)
served from a thread, fake upstreams as processes. Input items, instructions, tools and function
calls are translated to chat completions and back; ``previous_response_id`` continues a stored
conversation on its model; streams follow the Responses event sequence; bad input is answered in
OpenAI's error shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from deployments.openai_http import IngressState
from deployments.service_app import service_app
from routing.config import load_app_config
from routing.serving.auth import ApiKeys
from routing.serving.in_process import in_process_engine
from testing.apps import fake_pair_args
from testing.fake_upstream import FakeUpstream
from testing.local_server import serving

KEY, OTHER_KEY = "sk-responses-1", "sk-responses-2"
TOOL = {"type": "function", "name": "run_tests", "description": "Runs the tests", "parameters": {"type": "object"}}


@pytest.fixture(scope="module")
def url(upstreams: dict[str, FakeUpstream]) -> Iterator[str]:
    args = fake_pair_args(upstreams["strong"], upstreams["weak"], routers={"random": {"type": "random"}})
    engine = in_process_engine(load_app_config(args).resolve_env({}))
    with serving(service_app(engine, IngressState(ApiKeys([KEY, OTHER_KEY])))) as base:
        yield base


@pytest.fixture
def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=30)


def sent(server: FakeUpstream) -> dict[str, Any]:
    return server.requests()[-1]["body"]


def test_a_string_input_with_instructions_is_answered_as_a_response(
    client: openai.OpenAI, strong: FakeUpstream
) -> None:
    raw = client.responses.with_raw_response.create(
        model="router-random-0", input="Name a prime.", instructions="Be brief.", max_output_tokens=20, temperature=0.5
    )
    response = raw.parse()
    assert response.output_text == "strong answer #1" and response.model == "big" and response.status == "completed"
    assert response.usage is not None and response.usage.total_tokens == 9
    assert response.instructions == "Be brief." and response.id.startswith("resp_")
    assert raw.headers["x-route-target"] == "big" and raw.headers["x-route-decided"] == "fresh"
    assert sent(strong) == {
        "model": "big",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a prime."}],
        "max_completion_tokens": 20,
        "temperature": 0.5,
    }


def test_previous_response_id_continues_the_conversation_on_its_model(
    client: openai.OpenAI, strong: FakeUpstream, weak: FakeUpstream
) -> None:
    first = client.responses.create(model="router-random-0", input="Name a prime.", instructions="Be brief.")
    raw = client.responses.with_raw_response.create(
        model="router-random-1", input="And another?", previous_response_id=first.id
    )
    second = raw.parse()
    # Threshold 1 would send a fresh request to the weak model; the conversation stays where it began.
    assert second.model == "big" and raw.headers["x-route-decided"] == "pinned" and not weak.requests()
    assert second.previous_response_id == first.id
    assert sent(strong)["messages"] == [  # the earlier turns, without the instructions (not inherited)
        {"role": "user", "content": "Name a prime."},
        {"role": "assistant", "content": "strong answer #1"},
        {"role": "user", "content": "And another?"},
    ]
    unstored = client.responses.create(model="router-random-0", input="Name a prime.", store=False)
    for previous, caller in [(unstored.id, client), (first.id, client.with_options(api_key=OTHER_KEY))]:
        with pytest.raises(openai.BadRequestError) as refused:
            caller.responses.create(model="router-random-0", input="more", previous_response_id=previous)
        assert refused.value.code == "previous_response_not_found"
        assert refused.value.param == "previous_response_id"


def test_a_function_call_and_its_output_stay_on_the_model_that_called(
    client: openai.OpenAI, strong: FakeUpstream, weak: FakeUpstream
) -> None:
    strong.behave(call_tools=True)
    first = client.responses.create(model="router-random-0", input="Run the tests.", tools=[TOOL])  # type: ignore[list-item]
    (call,) = first.output
    assert call.type == "function_call" and call.name == "run_tests" and call.arguments == '{"step": 1}'
    assert sent(strong)["tools"] == [
        {
            "type": "function",
            "function": {"name": "run_tests", "description": "Runs the tests", "parameters": {"type": "object"}},
        }
    ]
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "3 passed"}
    raw = client.responses.with_raw_response.create(
        model="router-random-1",
        input=[output],
        previous_response_id=first.id,
        tools=[TOOL],  # type: ignore[list-item]
    )
    assert raw.parse().output_text == "strong answer #2" and raw.headers["x-route-decided"] == "inherited"
    assert sent(strong)["messages"][1:] == [
        {
            "role": "assistant",
            "tool_calls": [
                {"id": call.call_id, "type": "function", "function": {"name": "run_tests", "arguments": '{"step": 1}'}}
            ],
        },  # fmt: skip
        {"role": "tool", "tool_call_id": call.call_id, "content": "3 passed"},
    ]
    assert not weak.requests()


def test_input_items_carry_images_calls_and_outputs_and_drop_reasoning(
    client: openai.OpenAI, strong: FakeUpstream
) -> None:
    items: list[Any] = [
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": [
            {"type": "input_text", "text": "What is this?"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Let me look."}]},
        {"type": "function_call", "call_id": "c1", "name": "zoom", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "crop", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "zoomed"},
        {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "cropped"}]},
    ]  # fmt: skip
    client.responses.create(model="big", input=items)
    calls = [
        {"id": c, "type": "function", "function": {"name": n, "arguments": "{}"}}
        for c, n in [("c1", "zoom"), ("c2", "crop")]
    ]
    assert sent(strong)["messages"] == [
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}]},
        {"role": "assistant", "content": "Let me look.", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "c1", "content": "zoomed"},
        {"role": "tool", "tool_call_id": "c2", "content": "cropped"},
    ]  # fmt: skip


def test_a_streamed_response_follows_the_event_sequence_and_is_stored(
    client: openai.OpenAI, strong: FakeUpstream
) -> None:
    events = list(client.responses.create(model="router-random-0", input="Name a prime.", stream=True))
    kinds = [e.type for e in events]
    assert kinds == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        *["response.output_text.delta"] * 4,
        "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed",
    ]  # fmt: skip
    assert [e.sequence_number for e in events] == list(range(len(events)))
    done = events[-1].response  # type: ignore[union-attr]
    assert done.output_text == "strong answer #1" and done.usage is not None and done.usage.output_tokens == 4
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "strong answer #1"  # type: ignore[union-attr]
    later = client.responses.create(model="router-random-1", input="Another?", previous_response_id=done.id)
    assert later.model == "big" and sent(strong)["messages"][1] == {"role": "assistant", "content": "strong answer #1"}


def test_a_streamed_function_call_comes_as_argument_deltas(client: openai.OpenAI, strong: FakeUpstream) -> None:
    strong.behave(call_tools=True)
    with client.responses.stream(model="router-random-0", input="Run the tests.", tools=[TOOL]) as stream:  # type: ignore[list-item]
        events = list(stream)
        final = stream.get_final_response()
    deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]  # type: ignore[union-attr]
    assert deltas == ['{"step', '": 1}']
    (call,) = final.output
    assert call.type == "function_call" and call.arguments == '{"step": 1}' and call.status == "completed"
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "ok"}
    raw = client.responses.with_raw_response.create(
        model="router-random-1", input=[output], previous_response_id=final.id, stream=True
    )
    assert raw.headers["x-route-decided"] == "inherited" and raw.headers["x-route-target"] == "big"
    assert [e.type for e in raw.parse()][-1] == "response.completed"


def test_a_stream_cut_after_its_first_token_ends_with_an_error_event(
    client: openai.OpenAI, strong: FakeUpstream
) -> None:
    strong.behave("cut", cut_after=2)
    events = list(client.responses.create(model="big", input="Name a prime.", stream=True))
    assert [e.type for e in events][-2:] == ["error", "response.failed"]
    assert events[-2].code == "upstream_error"  # type: ignore[union-attr]
    assert events[-1].response.status == "failed"  # type: ignore[union-attr]


BAD = [
    ("unknown item", {"input": [{"type": "item_reference", "id": "x"}]}, "input"),
    ("hosted tool", {"input": "hi", "tools": [{"type": "web_search"}]}, "tools[0].type"),
    ("unknown field", {"input": "hi", "temprature": 1}, "temprature"),
    ("bad tool choice", {"input": "hi", "tool_choice": {"type": "mcp"}}, "tool_choice"),
    ("background", {"input": "hi", "background": True}, None),
    ("image by file id", {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
     "input[0].content[0]"),
    ("empty input", {"input": []}, None),
    ("no model", {"model": None, "input": "hi"}, "model"),
    ("unknown model", {"model": "gpt-nothing", "input": "hi"}, "model"),
    ("bad schema format", {"input": "hi", "text": {"format": {"type": "json_schema"}}}, "text.format"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "body", "param"), BAD, ids=[case for case, _, _ in BAD])
def test_bad_input_is_answered_in_openais_error_shape(
    url: str, case: str, body: dict[str, Any], param: str | None
) -> None:
    request = {"model": "router-random-0", **body}
    response = httpx.post(f"{url}/v1/responses", json=request, headers={"authorization": f"Bearer {KEY}"})
    assert response.status_code in (400, 404), response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    assert error["param"] == param, error


def test_a_request_without_a_key_is_refused_in_openais_shape(url: str) -> None:
    response = httpx.post(f"{url}/v1/responses", json={"model": "big", "input": "hi"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "missing_api_key"
