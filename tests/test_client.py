"""The in-process client on its own: no Ray, fake upstream servers over HTTP.

The chat behaviour it shares with the HTTP service is tested against both in test_serve_http.py;
here is what only this client has: its sync and async surfaces, its streams' lifetimes, its own
thread, and where its config comes from."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from openai.pagination import AsyncPage, SyncPage
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from routing.serving.client import AsyncRouterClient, RouterClient
from routing.serving.request_log import read_request_log
from routing.settings import ConfigError
from testing.apps import fake_pair_args
from testing.fake_upstream import FakeUpstream

# The canary (.ci/canary) runs these on the newest releases: a new openai client shows here first.
pytestmark = pytest.mark.canary
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
def args(strong: FakeUpstream, weak: FakeUpstream, tmp_path: Path) -> dict[str, Any]:
    # The random router needs no embedding model: a client starts in a fraction of a second.
    return fake_pair_args(
        strong, weak, routers={"random": {"type": "random"}}, request_log={"directory": str(tmp_path / "log")}
    )


@pytest.fixture
def client(args: dict[str, Any]) -> Iterator[RouterClient]:
    with RouterClient(args) as client:
        yield client


def client_threads() -> int:
    return sum(thread.name == "routellm-client" for thread in threading.enumerate())


def test_answers_are_the_openai_clients_own_types(client: RouterClient, strong: FakeUpstream) -> None:
    raw = client.chat.completions.with_raw_response.create(model="router-random-0", messages=QUESTION)
    assert raw.status_code == 200 and raw.headers["x-route-router"] == "random"
    assert (raw.headers["x-route-target"], raw.headers["x-route-threshold"]) == ("big", "0")
    completion = raw.parse()
    assert isinstance(completion, ChatCompletion) and completion.choices[0].message.content == "strong answer #1"
    assert completion.usage is not None and completion.usage.total_tokens == 9

    # A conversation goes on with the answer's own message object, and openai's "not given" marker.
    follow_up = [*QUESTION, completion.choices[0].message, {"role": "user", "content": "And of Spain?"}]
    again = client.chat.completions.create(model="big", messages=follow_up, max_tokens=openai.NOT_GIVEN)
    assert again.choices[0].message.content == "strong answer #2"
    assert strong.requests()[1]["body"]["messages"][1] == {"role": "assistant", "content": "strong answer #1"}

    models = client.models.list()
    assert isinstance(models, SyncPage) and [m.id for m in models] == ["router-random", "big", "small"]


def test_a_stream_left_early_is_closed_and_its_answer_recorded(
    client: RouterClient, strong: FakeUpstream, args: dict[str, Any]
) -> None:
    strong.behave("ok", chunks=4, delay_s=0.5)  # six chunks: three seconds if read to the end
    started = time.monotonic()
    with client.chat.completions.create(model="big", stream=True, messages=QUESTION) as stream:
        assert stream.response.headers["x-route-target"] == "big"
        for chunk in stream:
            assert isinstance(chunk, ChatCompletionChunk) and chunk.model == "big"
            break
    for _ in client.chat.completions.create(model="big", stream=True, messages=QUESTION):
        break  # no ``with``: leaving the loop closes it all the same
    assert time.monotonic() - started < 2.5
    records = list(read_request_log(args["request_log"]["directory"]))
    assert [(r.stream, r.answered_by) for r in records] == [(True, "big"), (True, "big")]


def test_the_async_client_works_from_any_event_loop(args: dict[str, Any], strong: FakeUpstream) -> None:
    client = AsyncRouterClient(args)

    async def conversation() -> None:
        raw = await client.chat.completions.with_raw_response.create(model="router-random-1", messages=QUESTION)
        assert raw.headers["x-route-target"] == "small" and raw.parse().model == "small"
        stream = await client.chat.completions.create(model="router-random-0", stream=True, messages=QUESTION)
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])
        assert text.startswith("strong answer #") and stream.response.headers["x-route-target"] == "big"
        async with await client.chat.completions.create(model="big", stream=True, messages=QUESTION) as stream:
            async for _ in stream:
                break
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model="gpt-9", messages=QUESTION)
        models = await client.models.list()
        assert isinstance(models, AsyncPage) and [m.id async for m in models][0] == "router-random"

    # Two loops one after the other: the upstream connections live on the client's own loop.
    asyncio.run(conversation())
    asyncio.run(conversation())
    asyncio.run(client.close())
    assert len(strong.requests()) == 4
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(client.chat.completions.create(model="big", messages=QUESTION))


def test_errors_are_the_openai_exceptions_the_service_would_cause(
    client: RouterClient, strong: FakeUpstream, weak: FakeUpstream
) -> None:
    with pytest.raises(openai.NotFoundError) as not_found:
        client.chat.completions.create(model="router-nope-0.5", messages=QUESTION)
    error = not_found.value
    assert (error.status_code, error.type) == (404, "invalid_request_error")
    assert (error.param, error.code) == ("model", "model_not_found")
    assert error.message == "Error code: 404 - router 'nope' does not exist; available: random"
    assert error.body == error.response.json()["error"] and error.body["message"] in error.message

    for fields in ({"temprature": 1}, {"extra_body": {"temprature": 1}}):
        with pytest.raises(openai.BadRequestError) as bad:
            client.chat.completions.create(model="big", messages=QUESTION, **fields)
        assert (bad.value.param, bad.value.code) == ("temprature", "invalid_request")
        assert bad.value.body["message"] == "Unrecognized request argument supplied: temprature"

    strong.behave("status", status=500)
    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(model="big", messages=QUESTION)
    assert (failed.value.status_code, failed.value.type, failed.value.code) == (502, "upstream_error", "upstream_error")

    strong.behave("cut", chunks=2)
    pieces = []
    with pytest.raises(openai.APIError) as cut:
        for chunk in client.chat.completions.create(model="big", stream=True, messages=QUESTION):
            pieces.append(chunk.choices[0].delta.content)
    assert not isinstance(cut.value, openai.APIStatusError) and cut.value.type == "upstream_error"
    assert len(pieces) == 3 and weak.requests() == []  # role and two pieces; no switch mid-answer

    strong.behave("hang")
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="big", messages=QUESTION, timeout=0.5)
    assert time.monotonic() - started < 1.5
    with pytest.raises(TypeError, match="timeout"):
        client.chat.completions.create(model="big", messages=QUESTION, timeout="soon")


def test_the_ensemble_router_routes_in_process(strong: FakeUpstream, weak: FakeUpstream) -> None:
    """The shipped ensemble checkpoint, with the local embedding model, in this process."""
    args = fake_pair_args(strong, weak, routers={"ensemble": {"type": "ensemble"}})
    with RouterClient(args) as client:
        raw = client.chat.completions.with_raw_response.create(model="router-ensemble-0", messages=QUESTION)
        assert raw.headers["x-route-router"] == "ensemble" and raw.headers["x-route-target"] == "big"
        assert 0 < float(raw.headers["x-route-score"]) < 1 and raw.parse().model == "big"
        raw = client.chat.completions.with_raw_response.create(model="router-ensemble-1", messages=QUESTION)
        assert raw.headers["x-route-target"] == "small" and raw.parse().model == "small"
        raw = client.chat.completions.with_raw_response.create(model="router-ensemble-50%", messages=QUESTION)
        assert raw.headers["x-route-router"] == "ensemble" and raw.status_code == 200
    assert len(strong.requests()) + len(weak.requests()) == 3 and strong.requests() and weak.requests()


def test_an_unconfigured_upstream_is_503(args: dict[str, Any]) -> None:
    del args["upstreams"]["strong"]["base_url"]
    with RouterClient(args) as client, pytest.raises(openai.InternalServerError) as unconfigured:
        client.chat.completions.create(model="big", messages=QUESTION)
    assert (unconfigured.value.status_code, unconfigured.value.code) == (503, "upstream_unconfigured")


def test_config_comes_from_a_yaml_file(args: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "args.yaml"
    path.write_text(yaml.safe_dump(args))
    for source in (path, str(path)):
        with RouterClient(source) as client:
            assert client.chat.completions.create(model="small", messages=QUESTION).model == "small"

    args["routers"]["random"]["sed"] = 1
    path.write_text(yaml.safe_dump(args))
    with pytest.raises(ConfigError, match=r"args\.routers\.random\.sed: unknown key 'sed'"):
        RouterClient(path)
    path.write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        RouterClient(path)


def test_closing_the_client_ends_its_streams_thread_and_connections(args: dict[str, Any]) -> None:
    before = client_threads()
    with RouterClient(args) as client:
        assert client_threads() == before + 1
        stream = client.chat.completions.create(model="big", stream=True, messages=QUESTION)
        next(stream)  # left open
        upstreams = [u.backend.client for u in client._core.engine.upstreams.values()]  # type: ignore[attr-defined]
    assert client_threads() == before and all(http.is_closed() for http in upstreams)
    assert [r.answered_by for r in read_request_log(args["request_log"]["directory"])] == ["big"]
    with pytest.raises(RuntimeError, match="closed"):
        client.chat.completions.create(model="big", messages=QUESTION)
