"""Pins shared by ingress replicas through a real redis-server: a conversation keeps its model
whichever replica serves it, and a store that is down or hangs costs pins, never a request."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from routing.config import load_app_config
from routing.errors import InvalidRequest, ServiceUnavailable
from routing.protocol import ChatCompletionRequest, RouteDecision
from routing.serving.conversation import Hints, conversation_of
from routing.serving.engine import RoutingEngine
from routing.serving.in_process import in_process_engine
from routing.serving.pins import Pin
from routing.serving.request_log import read_request_log
from routing.serving.responses.protocol import ResponsesRequest
from routing.serving.responses.serving import ResponsesServing
from routing.settings import ConfigError
from testing.apps import fake_pair_args, graph_config
from testing.cluster import deployed
from testing.fake_upstream import FakeUpstream
from testing.redis_server import RedisServer

HARD = "Prove that there are infinitely many primes p such that p + 2 is also prime, or explain why it is open."
CALL = {"id": "call_1", "type": "function", "function": {"name": "run_tests", "arguments": "{}"}}
USER = {"role": "user", "content": HARD}
TOOL = [{"role": "assistant", "tool_calls": [CALL]}, {"role": "tool", "tool_call_id": "call_1", "content": "ok"}]
FOLLOW_UP = [{"role": "assistant", "content": "Done."}, {"role": "user", "content": "do it"}]


@pytest.fixture
def server() -> Iterator[RedisServer]:
    redis_server = RedisServer()
    yield redis_server
    redis_server.stop()


def engine_on(server: RedisServer, strong: FakeUpstream, weak: FakeUpstream, **store: Any) -> RoutingEngine:
    sessions = {"store": "redis", "url": server.url, "ttl_s": 60, **store}
    args = fake_pair_args(strong, weak, routers={"mf": {"type": "mf"}}, sessions=sessions)
    return in_process_engine(load_app_config(args).resolve_env({}))


async def ask(engine: RoutingEngine, turns: list[dict[str, Any]], threshold: float, session: str) -> RouteDecision:
    body = ChatCompletionRequest.model_validate({"model": f"router-mf-{threshold}", "messages": turns})
    outcome, _ = await engine.complete(body, conversation_of(body, header=session))
    assert outcome.decision is not None
    return outcome.decision


def test_a_pin_keeps_its_whole_decision_in_the_store() -> None:
    decision = RouteDecision(router="mf", score=0.6, threshold=0.5, target="big", checkpoint="mf@abc", decided="fresh")
    pin = Pin(key="strong", decision=decision)
    assert Pin.from_json(pin.to_json()) == pin


def test_a_conversation_keeps_its_model_whichever_replica_serves_it(
    server: RedisServer, strong: FakeUpstream, weak: FakeUpstream
) -> None:
    first, second = engine_on(server, strong, weak), engine_on(server, strong, weak)

    async def scenario() -> list[tuple[str, str | None]]:
        start = (await ask(first, [USER], 0.5, "probe")).score - 1e-3
        decisions = [
            await ask(first, [USER], start, "conversation"),
            await ask(second, [USER, *TOOL], 0.999, "conversation"),
            await ask(first, [USER, *FOLLOW_UP], 0.999, "conversation"),
            await ask(second, [USER, *FOLLOW_UP], 0.999, "conversation"),
        ]
        return [(d.target, d.decided) for d in decisions]

    assert asyncio.run(scenario()) == [("big", "fresh"), ("big", "inherited"), ("big", "pinned"), ("big", "pinned")]
    assert server.keys() == sorted(f"routellm:pin:mf:{s}" for s in _session_keys("probe", "conversation"))


def test_a_store_that_is_down_or_hangs_costs_the_pin_never_the_request(
    server: RedisServer, strong: FakeUpstream, weak: FakeUpstream
) -> None:
    engine = engine_on(server, strong, weak, timeout_s=0.2)

    async def loop(session: str) -> list[tuple[str | None, str | None]]:
        start = (await ask(engine, [USER], 0.5, "probe")).score - 1e-3
        decisions = [await ask(engine, [USER], start, session), await ask(engine, [USER, *TOOL], 0.999, session)]
        return [(d.decided, d.session_error) for d in decisions]

    async def scenario() -> dict[str, list[tuple[str | None, str | None]]]:
        seen = {"before": await loop("before")}
        server.kill()
        seen["while down"] = await loop("while down")
        server.start()
        seen["after"] = await loop("after")
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGSTOP)  # a store that hangs: each call gives up after timeout_s
        try:
            seen["while hung"] = await loop("while hung")
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        return seen

    seen = asyncio.run(scenario())
    assert seen["before"] == seen["after"] == [("fresh", None), ("inherited", None)]
    for state, cause in (("while down", "ConnectionError"), ("while hung", "Timeout")):
        assert [decided for decided, _ in seen[state]] == ["fresh", "fresh"], seen  # answered, decided afresh
        assert all(cause in (error or "") for _, error in seen[state]), seen
    assert len(strong.requests()) + len(weak.requests()) == 12  # every request answered


def test_a_stored_response_is_continued_on_another_replica_and_a_store_that_is_down_says_so(
    server: RedisServer, strong: FakeUpstream, weak: FakeUpstream
) -> None:
    """The Responses API's stored conversations live in the shared store: a response created
    through one ingress is continued through another, on its model; with the store down, a new
    response is still answered and continuing one is a 503 that says why."""
    first, second = (ResponsesServing(engine_on(server, strong, weak)) for _ in range(2))
    caller = Hints(caller="key digest")

    def asked(threshold: float, **fields: Any) -> tuple[ResponsesRequest, dict[str, Any]]:
        raw = {"model": f"router-mf-{threshold}", **fields}
        return ResponsesRequest.model_validate(raw), raw

    async def scenario() -> None:
        _, opened = await first.create(*asked(0, input=HARD), caller)
        outcome, continued = await second.create(
            *asked(0.999, input="do it", previous_response_id=opened["id"]), caller
        )
        assert (outcome.model, outcome.decision.decided) == ("big", "pinned")  # type: ignore[union-attr]
        assert f"routellm:response:{opened['id']}" in server.keys()
        with pytest.raises(InvalidRequest, match="not found"):  # another caller's
            await second.create(*asked(0.999, input="do it", previous_response_id=opened["id"]), Hints(caller="other"))
        server.kill()
        outcome, unstored = await first.create(*asked(0, input=HARD), caller)
        assert outcome.model == "big" and unstored["output"]
        with pytest.raises(ServiceUnavailable) as down:
            await second.create(*asked(0.999, input="more", previous_response_id=continued["id"]), caller)
        assert down.value.code == "response_store_unavailable" and down.value.retry_after_s == 1

    asyncio.run(scenario())


def test_the_store_is_named_by_url_or_by_a_variable(strong: FakeUpstream, weak: FakeUpstream) -> None:
    def sessions(store: dict[str, Any], env: dict[str, str]) -> Any:
        return load_app_config(fake_pair_args(strong, weak, sessions=store)).resolve_env(env)

    named = sessions({"store": "redis", "url_env": "PINS_URL"}, {"PINS_URL": "redis://pins:6379/1"})
    assert named.sessions.url == "redis://pins:6379/1"
    with pytest.raises(ConfigError, match="store 'redis' needs 'url' or 'url_env'"):
        sessions({"store": "redis"}, {})
    with pytest.raises(ConfigError, match="'url' and 'url_env' are for store 'redis'"):
        sessions({"url": "redis://x"}, {})
    with pytest.raises(ConfigError, match="sessions.url_env: the variable 'PINS_URL' that holds the store's url"):
        in_process_engine(sessions({"store": "redis", "url_env": "PINS_URL"}, {}))


def _session_keys(*sessions: str) -> list[str]:
    body = ChatCompletionRequest.model_validate({"model": "m", "messages": [USER]})
    return [conversation_of(body, header=s).session.key for s in sessions]


@pytest.mark.cluster
def test_two_ingress_replicas_keep_a_conversation_on_its_model_and_survive_the_store(
    server: RedisServer, strong: FakeUpstream, weak: FakeUpstream, tmp_path: Path
) -> None:
    """A running graph with two ingress replicas and the shared store: an agent's conversation
    stays on its first model whichever replica answers (the request log is one file per replica
    process); with the store killed, every request is still answered, decided afresh."""
    log = tmp_path / "requests"
    args = fake_pair_args(
        strong, weak, sessions={"store": "redis", "url": server.url}, request_log={"directory": str(log)}
    )
    small = {"num_cpus": 0.1}
    deployments = [
        {"name": "Ingress", "num_replicas": 2, "ray_actor_options": {"num_cpus": 0.2}},
        {"name": "Embedding", "ray_actor_options": {"num_cpus": 0.3}},
        *(
            {"name": name, "ray_actor_options": small}
            for name in ("Router-mf", "Router-random", "LLM-strong", "LLM-weak")
        ),
    ]
    with tempfile.TemporaryDirectory() as ray_dir, deployed(graph_config(args, deployments), Path(ray_dir)) as cluster:
        url = f"{cluster.url}/v1/chat/completions"

        def burst(turns: list[dict[str, Any]], threshold: float, session: str, count: int) -> list[httpx.Response]:
            body = {"model": f"router-mf-{threshold}", "messages": turns}
            with ThreadPoolExecutor(count) as pool:
                return list(
                    pool.map(
                        lambda _: httpx.post(url, json=body, headers={"x-session-id": session}, timeout=60),
                        range(count),
                    )
                )

        (first,) = burst([USER], 0, "agent", 1)
        assert (first.json()["model"], first.headers["x-route-decided"]) == ("big", "fresh")
        later = burst([USER, *TOOL], 1, "agent", 12) + burst([USER, *FOLLOW_UP], 1, "agent", 12)
        assert {(r.status_code, r.json()["model"]) for r in later} == {(200, "big")}
        assert {r.headers["x-route-decided"] for r in later} == {"inherited", "pinned"}
        agent = [r for r in read_request_log(log) if r.session == "header:agent"]
        assert len(agent) == 25 and {r.answered_by for r in agent} == {"big"}
        per_replica = [
            sum('"header:agent"' in line for line in p.read_text().splitlines()) for p in log.glob("*.jsonl")
        ]
        assert len(per_replica) == 2 and all(per_replica), per_replica  # both replicas served the conversation

        server.kill()
        down = burst([USER], 0, "while down", 8) + burst([USER, *TOOL], 1, "while down", 8)
        assert {r.status_code for r in down} == {200}
        assert {r.headers["x-route-decided"] for r in down} == {"fresh"}
        assert all("session store did not answer" in r.headers["x-route-session-error"] for r in down)
