"""An agent's loop through every API the service speaks, on a running graph (``serve deploy``):
user → tool call → tool result → answer → follow-up, through ``/v1/chat/completions``, the
``openai`` client's ``responses.create`` (plain and streamed) and the ``anthropic`` client's
``messages.create`` and ``messages.stream``. Each conversation stays on its first model while the
threshold its requests ask for moves (from 0, all strong, to 1, all weak if decided afresh) and a
checkpoint swap lands on the Router replica between its first and second turns; with stickiness
off, the same loop flips to the weak model at its tool result."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from routing.resources import CHECKPOINT_DIR
from routing.serving.live_router import checkpoint_id
from testing import cluster as clusters
from testing.apps import fake_pair_args, graph_config
from testing.cluster import Cluster, for_serve_deploy, serve_deploy, wait_until_healthy
from testing.fake_upstream import FakeUpstream
from testing.traffic import wait_for

pytestmark = pytest.mark.cluster

HARD = "Prove that there are infinitely many primes p such that p + 2 is also prime, or explain why it is open"
CHAT_TOOL = {"type": "function", "function": {"name": "run_tests", "parameters": {"type": "object"}}}
RESPONSES_TOOL = {"type": "function", "name": "run_tests", "parameters": {"type": "object"}}
MESSAGES_TOOL = {"name": "run_tests", "input_schema": {"type": "object"}}
Answer = tuple[str, str | None, str | None]  # the model, how it was decided, the checkpoint that decided
Turn = Callable[[float, dict[str, str]], Answer]


def chat_loop(url: str, name: str) -> list[Turn]:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=60)
    messages: list[Any] = [{"role": "user", "content": f"{HARD} ({name})."}]

    def ask(threshold: float, headers: dict[str, str]) -> Answer:
        raw = client.chat.completions.with_raw_response.create(
            model=f"router-mf-{threshold}",
            messages=messages,
            tools=[CHAT_TOOL],
            extra_headers=headers,  # type: ignore[list-item]
        )
        said = raw.parse().choices[0].message
        messages.append(said.model_dump(exclude_none=True))
        return raw.parse().model, raw.headers.get("x-route-decided"), raw.headers.get("x-route-checkpoint")

    def tool_result(threshold: float, headers: dict[str, str]) -> Answer:
        call = messages[-1]["tool_calls"][0]
        messages.append({"role": "tool", "tool_call_id": call["id"], "content": "3 passed"})
        return ask(threshold, headers)

    def follow_up(threshold: float, headers: dict[str, str]) -> Answer:
        messages.append({"role": "user", "content": "do it"})
        return ask(threshold, headers)

    return [ask, tool_result, follow_up]


def responses_loop(url: str, name: str, stream: bool) -> list[Turn]:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=60)
    previous: list[Any] = []

    def ask(threshold: float, headers: dict[str, str], given: Any) -> Answer:
        more = {"previous_response_id": previous[-1].id} if previous else {}
        raw = client.responses.with_raw_response.create(
            model=f"router-mf-{threshold}", input=given, tools=[RESPONSES_TOOL], stream=stream,  # type: ignore[list-item]
            extra_headers=headers, **more,
        )  # fmt: skip
        response = [e for e in raw.parse() if e.type == "response.completed"][0].response if stream else raw.parse()  # type: ignore[union-attr]
        previous.append(response)
        return response.model, raw.headers.get("x-route-decided"), raw.headers.get("x-route-checkpoint")

    def tool_result(threshold: float, headers: dict[str, str]) -> Answer:
        call = previous[-1].output[0]
        assert call.type == "function_call"
        return ask(
            threshold, headers, [{"type": "function_call_output", "call_id": call.call_id, "output": "3 passed"}]
        )

    return [
        lambda threshold, headers: ask(threshold, headers, f"{HARD} ({name})."),
        tool_result,
        lambda threshold, headers: ask(threshold, headers, "do it"),
    ]


def messages_loop(url: str, name: str, stream: bool) -> list[Turn]:
    client = anthropic.Anthropic(base_url=url, api_key="none", max_retries=0, timeout=60)
    messages: list[Any] = [{"role": "user", "content": f"{HARD} ({name})."}]

    def ask(threshold: float, headers: dict[str, str]) -> Answer:
        asked = {"model": f"router-mf-{threshold}", "max_tokens": 64, "messages": messages, "tools": [MESSAGES_TOOL]}
        if stream:
            with client.messages.stream(**asked, extra_headers=headers) as events:
                message, answered_with = events.get_final_message(), events.response.headers
        else:
            raw = client.messages.with_raw_response.create(**asked, extra_headers=headers)
            message, answered_with = raw.parse(), raw.headers
        messages.append({"role": "assistant", "content": [block.model_dump() for block in message.content]})
        return message.model, answered_with.get("x-route-decided"), answered_with.get("x-route-checkpoint")

    def tool_result(threshold: float, headers: dict[str, str]) -> Answer:
        use = messages[-1]["content"][0]
        assert use["type"] == "tool_use"
        messages.append(
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use["id"], "content": "3 passed"}]}
        )
        return ask(threshold, headers)

    def follow_up(threshold: float, headers: dict[str, str]) -> Answer:
        messages.append({"role": "user", "content": "do it"})
        return ask(threshold, headers)

    return [ask, tool_result, follow_up]


def loops(url: str, run: str) -> dict[str, list[Turn]]:
    return {
        "chat": chat_loop(url, f"chat {run}"),
        "responses": responses_loop(url, f"responses {run}", stream=False),
        "responses stream": responses_loop(url, f"responses stream {run}", stream=True),
        "messages": messages_loop(url, f"messages {run}", stream=False),
        "messages stream": messages_loop(url, f"messages stream {run}", stream=True),
    }


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with for_serve_deploy() as started:
        yield started


def config_for(cluster: Cluster, args: dict[str, Any], checkpoint: Path | None) -> dict[str, Any]:
    router: dict[str, Any] = {"name": "Router-mf", "ray_actor_options": {"num_cpus": 0.1}}
    if checkpoint is not None:
        router["user_config"] = {"checkpoint": str(checkpoint)}
    small = {"num_cpus": 0.1}
    deployments = [
        {"name": "Ingress", "ray_actor_options": {"num_cpus": 0.2}},
        {"name": "Embedding", "ray_actor_options": {"num_cpus": 0.3}},
        router,
        *({"name": name, "ray_actor_options": small} for name in ("Router-random", "LLM-strong", "LLM-weak")),
    ]
    return graph_config(args, deployments, port=cluster.http_port)


def test_agent_loops_keep_their_model_through_every_api_while_threshold_and_checkpoint_change(
    cluster: Cluster, strong: FakeUpstream, weak: FakeUpstream, tmp_path: Path
) -> None:
    strong.behave(call_tools=True)
    weak.behave(call_tools=True)
    args = fake_pair_args(strong, weak)
    serve_deploy(cluster, config_for(cluster, args, None), tmp_path)
    wait_until_healthy(cluster.url + "/health")
    shipped, swapped = checkpoint_id(CHECKPOINT_DIR / "mf"), tmp_path / "mf-swapped"
    shutil.copytree(CHECKPOINT_DIR / "mf", swapped)

    held = loops(cluster.url, "held")
    firsts = {api: turns[0](0, {}) for api, turns in held.items()}
    serve_deploy(cluster, config_for(cluster, args, swapped), tmp_path)

    def checkpoint_in_service() -> str | None:
        return httpx.get(f"{cluster.url}/health/routers", timeout=30).json()["mf"].get("checkpoint")

    wait_for(lambda: checkpoint_in_service() == checkpoint_id(swapped), "the swapped checkpoint in service")
    rest = {api: [turn(1, {}) for turn in turns[1:]] for api, turns in held.items()}
    for api in held:
        # The pin holds the decision made by the checkpoint in service at the first turn.
        assert [firsts[api], *rest[api]] == [
            ("big", "fresh", shipped), ("big", "inherited", shipped), ("big", "pinned", shipped)
        ], api  # fmt: skip

    alone = {"x-route-stickiness": "off"}
    for api, turns in loops(cluster.url, "alone").items():
        answered = [turn(threshold, alone)[0] for turn, threshold in zip(turns, [0, 1, 1], strict=True)]
        assert answered == ["big", "small", "small"], api


def test_requests_pass_through_the_graph_to_upstreams_that_speak_their_api(
    strong: FakeUpstream, weak: FakeUpstream
) -> None:
    """On a running graph, through the LLM client replicas: a Messages request to an Anthropic
    upstream and a Responses request to one that speaks Responses go as they came, plain and
    streamed; a chat completion to the Anthropic upstream is translated."""
    args = fake_pair_args(strong, weak, routers={"random": {"type": "random"}})
    args["upstreams"]["strong"] = {"backend": "anthropic", "model": "big", "base_url": strong.url}
    args["upstreams"]["weak"] |= {"responses_api": True}
    with clusters.in_process(args) as running:
        messages = anthropic.Anthropic(base_url=running.url, api_key="none", max_retries=0, timeout=60)
        said = messages.messages.create(
            model="router-random-0", max_tokens=64, messages=[{"role": "user", "content": HARD}]
        )
        with messages.messages.stream(
            model="router-random-0", max_tokens=64, messages=[{"role": "user", "content": HARD}]
        ) as events:
            streamed = events.get_final_message()
        assert (said.id, streamed.id) == ("msg_strong_1", "msg_strong_2")  # the upstream's own messages
        responses = openai.OpenAI(base_url=f"{running.url}/v1", api_key="none", max_retries=0, timeout=60)
        first = responses.responses.create(model="router-random-1", input=HARD)
        more = responses.responses.create(
            model="router-random-1", input="more", previous_response_id=first.id, stream=True
        )
        done = [e for e in more if e.type == "response.completed"]
        assert first.id == "resp_weak_1" and done[0].response.id == "resp_weak_2"
        assert weak.requests()[-1]["body"]["previous_response_id"] == "resp_weak_1"
        chat = responses.chat.completions.create(model="router-random-0", messages=[{"role": "user", "content": HARD}])
        assert chat.choices[0].message.content == "strong answer #3" and "system" not in strong.requests()[-1]["body"]
