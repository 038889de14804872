"""Upstream failures against the in-process request path: real fake servers, real HTTP, no Ray.

Every way an upstream can fail is tried on the strong model with the weak one healthy (the
request must be answered, by the weak model, with the reason), and on both at once (an OpenAI
error, quickly).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from routing.config import load_app_config
from routing.errors import InvalidRequest, UpstreamError, UpstreamTimeout
from routing.protocol import ChatCompletionRequest
from routing.serving.engine import Outcome, RoutingEngine
from routing.serving.in_process import in_process_engine
from routing.serving.request_log import read_request_log
from routing.serving.telemetry import cost_of
from testing.apps import fake_pair_args, on_fake
from testing.fake_upstream import FakeUpstream

FAST = {
    "timeouts": {"first_token_s": 1.0, "total_s": 2.0},
    "retry": {"max_retries": 2, "backoff_initial_s": 0.01, "backoff_max_s": 0.05},
    "circuit_breaker": {"failure_threshold": 100, "cooldown_s": 1.0},
}
TO_STRONG = "router-random-0"  # every score is ≥ 0


def engine_for(strong: FakeUpstream, weak: FakeUpstream, **strong_overrides: Any) -> RoutingEngine:
    args = fake_pair_args(strong, weak, routers={"random": {"type": "random", "seed": 0}})
    args["upstreams"]["strong"] |= FAST | strong_overrides
    args["upstreams"]["weak"] |= FAST
    return in_process_engine(load_app_config(args).resolve_env({}))


def chat(model: str = TO_STRONG, stream: bool = False, **fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": model, "stream": stream, "messages": [{"role": "user", "content": "Hello there."}], **fields}
    )


async def answer(engine: RoutingEngine, stream: bool) -> tuple[Outcome, str]:
    if not stream:
        outcome, completion = await engine.complete(chat())
        return outcome, completion.choices[0].message.content or ""
    outcome, chunks = await engine.stream(chat(stream=True))
    return outcome, "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])


FAULTS = {
    # fault: (how the strong server misbehaves, expected reason, attempts it receives)
    "500": ({"mode": "status", "status": 500}, "upstream_error", 3),
    "503": ({"mode": "status", "status": 503}, "upstream_error", 3),
    "429": ({"mode": "status", "status": 429}, "upstream_rate_limited", 3),
    "hang": ({"mode": "hang"}, "upstream_timeout", 1),
    "malformed": ({"mode": "malformed"}, "upstream_malformed", 1),
    "not_an_object": ({"mode": "malformed", "json": ["an", "array"]}, "upstream_malformed", 1),
    "refused": (None, "upstream_unreachable", 0),
}


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failing_strong_model_is_answered_by_the_weak_one(
    strong: FakeUpstream, weak: FakeUpstream, fault: str, stream: bool
) -> None:
    behaviour, reason, attempts = FAULTS[fault]
    if behaviour is None:
        strong.refuse()
    else:
        strong.behave(**behaviour)
    engine = engine_for(strong, weak)
    started = time.monotonic()
    outcome, text = asyncio.run(answer(engine, stream))
    elapsed = time.monotonic() - started
    assert (outcome.model, outcome.fallback, text) == ("small", reason, "weak answer #1")
    assert outcome.decision is not None and outcome.decision.target == "big"
    if behaviour is not None:
        assert len(strong.requests()) == attempts
    # A hang costs the stream its first-token limit (1 s) and a whole answer its total (2 s).
    assert elapsed < (1.0 if stream else 2.0) + 1.5


def test_retries_answer_from_the_same_model_when_it_recovers(strong: FakeUpstream, weak: FakeUpstream) -> None:
    engine = engine_for(strong, weak)

    async def scenario() -> None:
        strong.behave("status", status=503, times=2)
        outcome, text = await answer(engine, stream=False)
        assert (outcome.model, outcome.fallback, text) == ("big", None, "strong answer #1")
        strong.behave("status", status=429, retry_after=0, times=1)
        outcome, text = await answer(engine, stream=True)
        assert (outcome.model, outcome.fallback) == ("big", None)

    asyncio.run(scenario())
    assert len(strong.requests()) == 5 and weak.requests() == []


def test_a_long_retry_after_falls_back_at_once(strong: FakeUpstream, weak: FakeUpstream) -> None:
    strong.behave("status", status=429, retry_after=60)
    started = time.monotonic()
    outcome, _ = asyncio.run(answer(engine_for(strong, weak), stream=False))
    assert (outcome.model, outcome.fallback) == ("small", "upstream_rate_limited")
    assert len(strong.requests()) == 1 and time.monotonic() - started < 1.0


def test_a_client_error_is_not_retried(strong: FakeUpstream, weak: FakeUpstream) -> None:
    strong.behave("status", status=401)
    outcome, _ = asyncio.run(answer(engine_for(strong, weak), stream=False))
    assert (outcome.model, outcome.fallback) == ("small", "upstream_error")
    assert len(strong.requests()) == 1


def test_a_stream_cut_after_its_first_chunk_ends_in_an_error_not_a_switch(
    strong: FakeUpstream, weak: FakeUpstream
) -> None:
    strong.behave("cut", chunks=2)
    engine = engine_for(strong, weak)

    async def scenario() -> list[str]:
        outcome, chunks = await engine.stream(chat(stream=True))
        assert (outcome.model, outcome.fallback) == ("big", None)
        received = []
        with pytest.raises(UpstreamError):
            async for chunk in chunks:
                received.append(chunk.choices[0].delta.content)
        return received

    assert len(asyncio.run(scenario())) == 3
    assert weak.requests() == []


def test_a_stream_cut_before_its_first_token_falls_back(strong: FakeUpstream, weak: FakeUpstream) -> None:
    strong.behave("cut", cut_after=0)  # the role chunk arrives, then the connection drops
    outcome, text = asyncio.run(answer(engine_for(strong, weak), stream=True))
    assert (outcome.model, outcome.fallback, text) == ("small", "upstream_unreachable", "weak answer #1")
    assert len(strong.requests()) == 3  # a dropped connection is worth retrying


def test_a_stream_slower_than_its_total_time_ends_in_a_timeout(strong: FakeUpstream, weak: FakeUpstream) -> None:
    strong.behave("ok", chunks=8, delay_s=0.5)  # the first chunk in time, the whole stream in 4 s
    engine = engine_for(strong, weak)

    async def scenario() -> None:
        _, chunks = await engine.stream(chat(stream=True))
        with pytest.raises(UpstreamTimeout):
            async for _ in chunks:
                pass

    started = time.monotonic()
    asyncio.run(scenario())
    assert time.monotonic() - started < 2.0 + 0.8


def test_the_circuit_opens_after_repeated_failures_and_closes_after_cooldown(
    strong: FakeUpstream, weak: FakeUpstream
) -> None:
    engine = engine_for(
        strong, weak, retry={"max_retries": 0}, circuit_breaker={"failure_threshold": 2, "cooldown_s": 1}
    )
    breaker = engine.upstreams["strong"].breaker
    strong.behave("status", status=500)

    async def scenario() -> None:
        for _ in range(2):
            assert (await answer(engine, stream=False))[0].fallback == "upstream_error"
        assert breaker.state == "open"
        outcome, _ = await answer(engine, stream=True)
        assert (outcome.model, outcome.fallback) == ("small", "circuit_open")
        assert len(strong.requests()) == 2  # the open circuit sent nothing
        strong.behave("ok")
        await asyncio.sleep(1.1)
        assert breaker.state == "half_open"
        outcome, text = await answer(engine, stream=False)
        assert (outcome.model, outcome.fallback, text) == ("big", None, "strong answer #1")
        assert breaker.state == "closed"

    asyncio.run(scenario())


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_both_models_down_is_an_openai_error_within_the_time_limits(
    strong: FakeUpstream, weak: FakeUpstream, stream: bool
) -> None:
    engine = engine_for(strong, weak)
    strong.behave("status", status=500)
    weak.behave("status", status=502)
    with pytest.raises(UpstreamError) as info:
        asyncio.run(answer(engine, stream))
    assert info.value.status_code == 502 and "fallback failed too" in info.value.message
    assert "'big'" in info.value.message and "'small'" in info.value.message

    strong.behave("hang")
    weak.behave("hang")
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout) as timeout:
        asyncio.run(answer(engine_for(strong, weak), stream))
    limit = 2 * (1.0 if stream else 2.0)
    assert timeout.value.status_code == 504 and time.monotonic() - started < limit + 1.5


def test_a_router_that_cannot_score_leaves_the_answer_to_the_strong_model(
    strong: FakeUpstream, weak: FakeUpstream
) -> None:
    strong_url = strong.base_url
    strong.refuse()  # here: the embedding endpoint, down
    args = fake_pair_args(strong, weak, routers={"mf": {"type": "mf"}})
    args["upstreams"]["strong"]["base_url"] = weak.base_url  # both chat models on the healthy server
    args["embedding"] = {
        "backend": "openai",
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "base_url": strong_url,
        "timeout_s": 2,
    }
    engine = in_process_engine(load_app_config(args).resolve_env({}))
    outcome, completion = asyncio.run(engine.complete(chat("router-mf-0.5")))
    assert (outcome.model, outcome.fallback, outcome.decision) == ("big", "routing_upstream_unreachable", None)
    assert completion.choices[0].message.content == "weak answer #1"

    args["fallback"] = {"on_routing_error": "error"}
    strict = in_process_engine(load_app_config(args).resolve_env({}))
    with pytest.raises(UpstreamError):
        asyncio.run(strict.complete(chat("router-mf-0.5")))

    # The strong model not configured either: the weak one answers.
    unconfigured = {**args, "fallback": {}}
    unconfigured["upstreams"] = {**args["upstreams"], "strong": {"backend": "openai", "model": "big"}}
    outcome, completion = asyncio.run(
        in_process_engine(load_app_config(unconfigured).resolve_env({})).complete(chat("router-mf-0.5"))
    )
    assert (outcome.model, outcome.fallback) == ("small", "routing_upstream_unreachable")

    # An embedding endpoint that hangs: the decision is given up after routing_timeout_s.
    strong.restart()
    strong.behave("hang")
    args["embedding"]["timeout_s"] = 30
    args["fallback"] = {"routing_timeout_s": 0.5}
    patient = in_process_engine(load_app_config(args).resolve_env({}))
    started = time.monotonic()
    outcome, _ = asyncio.run(patient.complete(chat("router-mf-0.5")))
    assert (outcome.model, outcome.fallback) == ("big", "routing_timeout")
    assert time.monotonic() - started < 0.5 + 1.0


def test_limits_on_messages_and_text(strong: FakeUpstream, weak: FakeUpstream) -> None:
    args = fake_pair_args(strong, weak, limits={"max_messages": 3, "max_prompt_chars": 1000})
    engine = in_process_engine(load_app_config(args).resolve_env({}))
    many = [{"role": "user", "content": "hi"}] * 4
    with pytest.raises(InvalidRequest) as info:
        asyncio.run(engine.complete(ChatCompletionRequest.model_validate({"model": "small", "messages": many})))
    assert (info.value.code, info.value.param) == ("too_many_messages", "messages")
    with pytest.raises(InvalidRequest) as info:
        asyncio.run(engine.complete(chat("router-mf-0.5", messages=[{"role": "user", "content": "x" * 1001}])))
    assert info.value.code == "context_length_exceeded"
    # Within the limits, a prompt far longer than the router's token window is cut, not refused.
    roomy = in_process_engine(load_app_config(fake_pair_args(strong, weak)).resolve_env({}))
    long = chat(messages=[{"role": "user", "content": "word " * 100_000}]).messages
    decision = asyncio.run(roomy.route("router-mf-0.5", long))
    assert 0.0 < decision.score < 1.0


def test_cost_against_all_strong_from_configured_prices(strong: FakeUpstream, weak: FakeUpstream) -> None:
    args = fake_pair_args(strong, weak)
    args["upstreams"]["strong"]["price"] = {"input_per_million": 2.5, "output_per_million": 10.0}
    args["upstreams"]["weak"]["price"] = {"input_per_million": 0.15, "output_per_million": 0.6}
    config = load_app_config(args)
    weak_cost = cost_of(config, "weak", prompt_tokens=1_000_000, completion_tokens=500_000)
    assert weak_cost is not None
    assert (weak_cost.usd, weak_cost.all_strong_usd, weak_cost.saved_usd) == pytest.approx((0.45, 7.5, 7.05))
    strong_cost = cost_of(config, "strong", prompt_tokens=1000, completion_tokens=0)
    assert strong_cost is not None and strong_cost.saved_usd == 0.0
    del args["upstreams"]["strong"]["price"]
    assert cost_of(load_app_config(args), "weak", 10, 10) is None


def test_savings_are_against_the_routers_own_most_capable_candidate(
    strong: FakeUpstream, weak: FakeUpstream, mid: FakeUpstream, tmp_path: Path
) -> None:
    # A router whose most capable candidate ("premium") is dearer than the app's strong model.
    per_million = {"weak": 1.0, "strong": 10.0}
    args = fake_pair_args(strong, weak, request_log={"directory": str(tmp_path)})
    for key, usd in per_million.items():
        args["upstreams"][key]["price"] = {"input_per_million": usd, "output_per_million": usd}
    premium = {"input_per_million": 100.0, "output_per_million": 100.0}
    args["upstreams"]["premium"] = on_fake(mid, "premium", price=premium, timeouts={"total_s": 5})
    args["routers"] = {"random": {"type": "random", "seed": 0, "candidates": ["weak", "premium"]}}
    engine = in_process_engine(load_app_config(args).resolve_env({}))

    async def ask() -> None:
        for model in ("router-random-1", "router-random-0", "premium"):  # the cheapest, the most capable, by name
            await engine.complete(chat(model))
        await engine.aclose()

    asyncio.run(ask())
    tokens = 9 / 1_000_000  # the fake upstreams' usage: 5 tokens in, 4 out
    saved = {(r.model, r.answered_by): r.saved_usd for r in read_request_log(tmp_path)}
    assert saved == pytest.approx(
        {
            ("router-random-1", "small"): (100.0 - 1.0) * tokens,  # against premium, not the app's strong
            ("router-random-0", "premium"): 0.0,
            ("premium", "premium"): (10.0 - 100.0) * tokens,  # named: against the default candidates', negative
        }
    )
