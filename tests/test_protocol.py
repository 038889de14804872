from __future__ import annotations

import pytest
from pydantic import ValidationError

from routing.errors import InvalidRequest
from routing.model_names import RouterAlias, parse_router_alias
from routing.protocol import ChatCompletionRequest, ChatMessage
from routing.serving.conversation import scored_text


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("router-mf-0.5", RouterAlias("mf", 0.5)),
        ("router-sw_ranking-0", RouterAlias("sw_ranking", 0.0)),
        ("router-mf-1", RouterAlias("mf", 1.0)),
        ("router-mf-1e-05", RouterAlias("mf", 1e-05)),
        ("router-mf", RouterAlias("mf", None)),
        ("gpt-4o", None),
        ("routers-mf-0.5", None),
    ],
)
def test_router_aliases(model: str, expected: RouterAlias | None) -> None:
    assert parse_router_alias(model) == expected


@pytest.mark.parametrize(
    "model",
    [
        "router-mf-abc",
        "router-mf-1.5",
        "router-mf--0.1",
        "router-mf-nan",
        "router-mf-inf",
        "router--0.5",
        "router-",
        "router-mf-",
        "router-mf-%",
    ],
)
def test_bad_router_aliases_are_invalid_requests(model: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_router_alias(model)
    assert info.value.status_code == 400 and info.value.param == "model"


def test_a_trailing_hyphen_is_refused_naming_the_forms_that_work() -> None:
    with pytest.raises(InvalidRequest, match="'router-mf-' has nothing after its last hyphen: use 'router-mf' for"):
        parse_router_alias("router-mf-")


def request(**fields: object) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"messages": []},
        {"messages": [{"role": "bot", "content": "x"}]},
        {"messages": [{"role": "user"}]},
        {"messages": [{"role": "user", "content": 5}]},
        {"messages": [{"role": "tool", "content": "x"}]},
        {"messages": [{"role": "user", "content": "x", "tool_calls": []}]},
        {"messages": [{"role": "user", "content": [{"type": "video", "url": "x"}]}]},
        {"temperature": "0.5"},
        {"temperature": 3},
        {"max_tokens": 0},
        {"max_tokens": 1.5},
        {"stream": "yes"},
        {"n": 0},
        {"stop": ["a", "b", "c", "d", "e"]},
        {"frobnicate": True},
        {"model": ""},
    ],
)
def test_invalid_requests_are_rejected(fields: dict) -> None:
    with pytest.raises(ValidationError):
        request(**fields)


def test_valid_request_forwards_only_what_was_set() -> None:
    r = request(temperature=0, max_tokens=5, stop="\n", tools=[{"type": "function", "function": {"name": "f"}}])
    assert r.upstream_params() == {
        "temperature": 0,
        "max_tokens": 5,
        "stop": "\n",
        "tools": [{"type": "function", "function": {"name": "f"}}],
    }


def test_the_scored_prompt_is_the_last_user_turn_or_it_with_the_first() -> None:
    messages = [
        ChatMessage.model_validate(m)
        for m in [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "second"},
                    {"type": "image_url", "image_url": {"url": "http://x/y.png"}},
                    {"type": "text", "text": "question"},
                ],
            },
            {"role": "assistant", "content": "partial"},
        ]
    ]
    assert scored_text(messages, "last_user_turn", 1000) == "second\nquestion"
    assert scored_text(messages, "user_turns", 1000) == "second\nquestion\n\nfirst question"
    with pytest.raises(InvalidRequest, match="needs at least one 'user' message"):
        scored_text(messages[:1], "user_turns", 1000)
