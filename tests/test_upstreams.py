from __future__ import annotations

import asyncio
import socket

import pytest

from routing.errors import UpstreamError, UpstreamRejected, UpstreamTimeout, UpstreamUnconfigured
from routing.protocol import ChatCompletionRequest
from routing.upstreams import make_backend
from routing.upstreams.config import LocalUpstream, OpenAIUpstream
from routing.upstreams.local import LocalChatBackend, StopTrimmer

# The canary (.ci/canary) runs these on the newest releases: a new openai client shows here first.
pytestmark = pytest.mark.canary


def chat(stream: bool = False, **fields: object) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "any", "messages": [{"role": "user", "content": "Say hello."}], "stream": stream, **fields}
    )


def openai_backend(base_url: str | None, **fields: object):  # type: ignore[no-untyped-def]
    return make_backend(OpenAIUpstream(backend="openai", model="big", base_url=base_url, **fields))


def test_openai_backend_answers_and_sends_the_key(strong, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TEST_STRONG_KEY", "sk-test-123")
    backend = openai_backend(strong.base_url, api_key_env="TEST_STRONG_KEY")

    async def scenario() -> None:
        completion = await backend.complete(chat(temperature=0.2, max_tokens=7))
        assert completion.model == "big" and completion.choices[0].message.content == "strong answer #1"
        chunks = [c async for c in backend.stream(chat(stream=True))]
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == "strong answer #2"
        assert chunks[-1].choices[0].finish_reason == "stop" and all(c.model == "big" for c in chunks)

    asyncio.run(scenario())
    first, second = strong.requests()
    assert first["authorization"] == "Bearer sk-test-123"
    assert first["body"]["model"] == "big" and first["body"]["temperature"] == 0.2 and first["body"]["max_tokens"] == 7
    assert second["body"]["stream"] is True


@pytest.mark.parametrize(
    ("behaviour", "error", "status"),
    [
        ({"mode": "status", "status": 500}, UpstreamError, 502),
        ({"mode": "status", "status": 429}, UpstreamError, 502),
        ({"mode": "status", "status": 401}, UpstreamError, 502),
        ({"mode": "status", "status": 400}, UpstreamRejected, 400),
        ({"mode": "malformed"}, UpstreamError, 502),
        ({"mode": "hang"}, UpstreamTimeout, 504),
    ],
)
def test_openai_backend_failures_map_to_service_errors(strong, behaviour, error, status) -> None:  # type: ignore[no-untyped-def]
    strong.behave(**behaviour)
    backend = openai_backend(strong.base_url, timeouts={"total_s": 1})

    async def scenario() -> None:
        for attempt in (backend.complete(chat()), _drain(backend.stream(chat(stream=True)))):
            with pytest.raises(error) as info:
                await attempt
            assert info.value.status_code == status and info.value.model == "big"

    asyncio.run(scenario())


async def _drain(chunks) -> None:  # type: ignore[no-untyped-def]
    async for _ in chunks:
        pass


def test_openai_backend_refused_connection_and_unconfigured() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(UpstreamError, match="unreachable"):
        asyncio.run(openai_backend(f"http://127.0.0.1:{port}/v1").complete(chat()))
    unconfigured = OpenAIUpstream(backend="openai", model="big", base_url_env="NOT_SET_ANYWHERE").resolve_env({})
    with pytest.raises(UpstreamUnconfigured, match="NOT_SET_ANYWHERE"):
        asyncio.run(make_backend(unconfigured).complete(chat()))


def test_stream_cut_midway_raises_after_the_first_chunks(strong) -> None:  # type: ignore[no-untyped-def]
    strong.behave("cut", chunks=2)
    backend = openai_backend(strong.base_url)

    async def scenario() -> list[str]:
        received = []
        with pytest.raises(UpstreamError):
            async for chunk in backend.stream(chat(stream=True)):
                received.append(chunk.choices[0].delta.content or "")
        return received

    role, first, second = asyncio.run(scenario())
    assert role == "" and (first + second).startswith("strong a")


@pytest.mark.parametrize(
    ("pieces", "stops", "expected", "stopped"),
    [
        (["Hel", "lo wor", "ld"], ["wor"], "Hello ", True),
        (["a", "b", "c"], ["bd"], "abc", False),
        (["ab", "cd"], ["bc", "zz"], "a", True),
        (["x"], [], "x", False),
    ],
)
def test_stop_trimmer(pieces: list[str], stops: list[str], expected: str, stopped: bool) -> None:
    trimmer = StopTrimmer(stops)
    out = "".join(trimmer.feed(p) for p in pieces) + trimmer.flush()
    assert (out, trimmer.stopped) == (expected, stopped)


@pytest.fixture(scope="module")
def smollm2() -> LocalChatBackend:
    return LocalChatBackend(LocalUpstream(backend="local", max_new_tokens=24))


def test_embedded_smollm2_generates(smollm2: LocalChatBackend) -> None:
    async def scenario() -> None:
        completion = await smollm2.complete(
            chat(
                max_tokens=12,
                messages=[{"role": "user", "content": "What is the capital of France? Answer in one word."}],
            )
        )
        text = completion.choices[0].message.content or ""
        assert completion.model == "smollm2-135m-instruct" and "Paris" in text
        assert 0 < completion.usage.completion_tokens <= 12
        chunks = [
            c async for c in smollm2.stream(chat(stream=True, max_tokens=200, stream_options={"include_usage": True}))
        ]
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert len(chunks) > 3 and streamed.strip()
        assert chunks[-2].choices[0].finish_reason == "length"  # capped at max_new_tokens=24
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 24

    asyncio.run(scenario())


def test_embedded_smollm2_honours_stop_and_rejects_what_it_cannot_do(smollm2: LocalChatBackend) -> None:
    async def scenario() -> None:
        completion = await smollm2.complete(chat(stop=["e"], messages=[{"role": "user", "content": "Say hello."}]))
        assert "e" not in (completion.choices[0].message.content or "")
        assert completion.choices[0].finish_reason == "stop"
        for fields in ({"n": 2}, {"tools": [{"type": "function", "function": {"name": "f"}}]}):
            with pytest.raises(UpstreamRejected):
                await smollm2.complete(chat(**fields))

    asyncio.run(scenario())
