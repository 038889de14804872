"""The request path in one process: real routers and MiniLM, fake upstream servers over HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from routing.config import load_app_config
from routing.errors import ModelNotFound, UpstreamUnconfigured
from routing.protocol import ChatCompletionRequest
from routing.serving.engine import RoutingEngine
from routing.serving.in_process import in_process_engine
from testing.apps import fake_pair_args
from testing.fake_upstream import FakeUpstream

PROMPT = "Explain the difference between a process and a thread."


def engine_for(strong: FakeUpstream, weak: FakeUpstream, **overrides: Any) -> RoutingEngine:
    return in_process_engine(load_app_config(fake_pair_args(strong, weak, **overrides)).resolve_env({}))


def chat(model: str, stream: bool = False) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {
            "model": model,
            "stream": stream,
            "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": PROMPT}],
        }
    )


def test_mf_threshold_decides_which_upstream_is_called(strong: FakeUpstream, weak: FakeUpstream) -> None:
    engine = engine_for(strong, weak)

    async def scenario() -> None:
        decision = await engine.route("router-mf-0.5", chat("x").messages)
        assert decision.router == "mf" and 0 < decision.score < 1
        below, above = max(decision.score - 1e-3, 0), min(decision.score + 1e-3, 1)

        outcome, completion = await engine.complete(chat(f"router-mf-{below}"))
        assert (outcome.decision.target, outcome.model, completion.model) == ("big", "big", "big")
        assert outcome.fallback is None and abs(outcome.decision.score - decision.score) < 1e-6
        assert len(strong.requests()) == 1 and weak.requests() == []

        outcome, completion = await engine.complete(chat(f"router-mf-{above}"))
        assert (outcome.decision.target, completion.model) == ("small", "small")
        assert len(strong.requests()) == 1 and len(weak.requests()) == 1
        assert weak.requests()[0]["body"]["messages"][1]["content"] == PROMPT

    asyncio.run(scenario())


def test_direct_model_names_and_unknown_names(strong: FakeUpstream, weak: FakeUpstream) -> None:
    engine = engine_for(strong, weak)

    async def scenario() -> None:
        outcome, completion = await engine.complete(chat("small"))
        assert outcome.decision is None and completion.choices[0].message.content == "weak answer #1"
        for model in ("gpt-unknown", "router-nope-0.5"):
            with pytest.raises(ModelNotFound):
                await engine.complete(chat(model))
        assert [m.id for m in engine.models().data] == ["router-random", "router-mf", "big", "small"]

    asyncio.run(scenario())
    assert strong.requests() == []


def test_unconfigured_strong_model_is_answered_by_the_weak_one(strong: FakeUpstream, weak: FakeUpstream) -> None:
    args = fake_pair_args(strong, weak)
    args["upstreams"]["strong"] = {"backend": "openai", "model": "big", "base_url_env": "UNSET_STRONG_URL"}
    engine = in_process_engine(load_app_config(args).resolve_env({}))

    async def scenario() -> None:
        outcome, completion = await engine.complete(chat("router-random-0"))
        assert outcome.decision.target == "big" and completion.model == "small"
        assert outcome.fallback == "upstream_unconfigured"
        with pytest.raises(UpstreamUnconfigured, match="UNSET_STRONG_URL"):
            await engine.complete(chat("big"))  # a direct call never switches models

    asyncio.run(scenario())
    args["fallback"] = {"on_unconfigured": "error"}
    strict = in_process_engine(load_app_config(args).resolve_env({}))
    with pytest.raises(UpstreamUnconfigured):
        asyncio.run(strict.complete(chat("router-random-0")))


def test_embeddings_can_come_from_an_openai_compatible_endpoint(strong: FakeUpstream, weak: FakeUpstream) -> None:
    # A server that serves all-MiniLM-L6-v2 over /v1/embeddings satisfies the shipped MF checkpoint.
    engine = engine_for(
        strong,
        weak,
        embedding={"backend": "openai", "model": "sentence-transformers/all-MiniLM-L6-v2", "base_url": weak.base_url},
    )

    async def scenario() -> None:
        decision = await engine.route("router-mf-0.5", chat("x").messages)
        assert 0 < decision.score < 1
        again = await engine.route("router-mf-0.5", chat("x").messages)
        assert again.score == decision.score

    asyncio.run(scenario())
    sent = [r["body"] for r in weak.requests()]
    assert [(b["model"], b["input"]) for b in sent] == [("sentence-transformers/all-MiniLM-L6-v2", [PROMPT])] * 2


def test_a_router_chooses_between_its_own_candidates(strong: FakeUpstream, weak: FakeUpstream) -> None:
    # Candidates in the other order: 'weak' is this router's most capable (last) one.
    routers = {"random": {"type": "random", "seed": 0, "candidates": ["strong", "weak"]}}
    engine = engine_for(strong, weak, routers=routers)
    outcome, completion = asyncio.run(engine.complete(chat("router-random-0")))
    assert (outcome.decision.target, completion.model) == ("small", "small")
    outcome, completion = asyncio.run(engine.complete(chat("router-random-1")))
    assert (outcome.decision.target, completion.model) == ("big", "big")


def test_readiness_names_the_parts_that_cannot_answer_yet(strong: FakeUpstream, weak: FakeUpstream) -> None:
    # mf needs an embedding, which comes from the weak server; random needs nothing.
    engine = engine_for(
        strong,
        weak,
        embedding={"backend": "openai", "model": "sentence-transformers/all-MiniLM-L6-v2", "base_url": weak.base_url},
    )

    async def scenario() -> tuple[list[str], list[str]]:
        weak.refuse()
        try:
            refused = await engine.unready(timeout_s=5)
        finally:
            weak.restart()
        return refused, await engine.unready(timeout_s=5)

    assert asyncio.run(scenario()) == (["router 'mf'"], [])
    # Readiness probes are not routing decisions: no upstream was called.
    assert strong.requests() == []
