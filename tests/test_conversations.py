"""Conversations and tool loops: what is scored, which conversation a request belongs to, and a
decision that holds for the conversation (pinned) and for a tool loop (inherited) while the
threshold moves, by each stickiness; with real routers and MiniLM, fake upstreams over HTTP."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from routing.config import load_app_config
from routing.errors import InvalidRequest
from routing.protocol import ChatCompletionRequest, ChatMessage
from routing.resources import CHECKPOINT_DIR
from routing.serving.conversation import conversation_of, scored_text, session_of, turn_of
from routing.serving.engine import RoutingEngine
from routing.serving.in_process import in_process_engine
from routing.serving.kv_store import MemoryKeyValues
from routing.serving.live_router import checkpoint_id
from testing.apps import fake_pair_args
from testing.fake_upstream import FakeUpstream

HARD = "Prove that there are infinitely many primes p such that p + 2 is also prime, or explain why it is open."
CALL = {"id": "call_1", "type": "function", "function": {"name": "run_tests", "arguments": "{}"}}


def messages(*turns: dict[str, Any]) -> list[ChatMessage]:
    return [ChatMessage.model_validate(t) for t in turns]


def request(model: str, turns: list[dict[str, Any]], **fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": model, "messages": turns, **fields})


USER = {"role": "user", "content": HARD}
ASKED_TOOL = {"role": "assistant", "content": None, "tool_calls": [CALL]}
TOOL_RESULT = {"role": "tool", "tool_call_id": "call_1", "content": "3 passed"}
ANSWERED = {"role": "assistant", "content": "All tests pass."}
FOLLOW_UP = {"role": "user", "content": "do it"}
LOOP = [[USER], [USER, ASKED_TOOL, TOOL_RESULT], [USER, ASKED_TOOL, TOOL_RESULT, ANSWERED, FOLLOW_UP]]


def test_the_scored_text_puts_the_newest_turn_first_and_never_the_system_prompt() -> None:
    convo = messages({"role": "system", "content": "You are a coding agent."}, USER, ANSWERED, FOLLOW_UP, TOOL_RESULT)
    assert scored_text(convo, "last_user_turn", 1000) == "do it"
    assert scored_text(convo, "user_turns", 1000) == f"do it\n\n{HARD}"
    assert scored_text(convo, "user_turns", 10) == "do it\n\nPro"
    assert scored_text(convo[:2], "user_turns", 1000) == scored_text(convo[:2], "last_user_turn", 1000) == HARD


def test_a_turn_knows_a_tool_loop_from_a_new_user_turn() -> None:
    assert turn_of(messages(USER)) == turn_of(messages(USER)) and not turn_of(messages(USER)).tool_result
    assert turn_of(messages(USER, ASKED_TOOL, TOOL_RESULT)).tool_result
    assert turn_of(messages(USER, ASKED_TOOL)).tool_result  # the call itself, sent back to be continued
    assert turn_of(messages(*LOOP[2])).user_turns == 2 and not turn_of(messages(*LOOP[2])).tool_result


def test_the_session_comes_from_the_header_then_the_body_ids_then_the_opening() -> None:
    body = request("router-mf", [USER])
    by = {
        "header": session_of(body, header="agent-run-7"),
        "metadata": session_of(request("m", [USER], metadata={"session_id": "s-1"})),
        "prompt_cache_key": session_of(request("m", [USER], prompt_cache_key="k")),
        "user": session_of(request("m", [USER], user="ada")),
        "conversation": session_of(body),
    }
    assert {source: s.source for source, s in by.items()} == {source: source for source in by}
    assert by["header"].shown == "header:agent-run-7"
    # The opening names a conversation whatever follows it, and the caller keeps it apart.
    assert session_of(request("m", LOOP[2])).key == by["conversation"].key
    assert session_of(body, caller="other key").key != by["conversation"].key
    assert session_of(request("m", [USER], user="bob")).key != by["user"].key
    # An id that is not plain text, or too long for a header, is shown by its digest.
    for odd in ("x" * 500, "line\nbreak"):
        shown = session_of(body, header=odd).shown
        assert shown.startswith("header:") and odd not in shown and len(shown) < 50


def test_stored_values_expire_after_their_last_use_and_the_least_recently_used_goes_first() -> None:
    now = [0.0]
    pins = MemoryKeyValues(ttl_s=10, max_entries=2, clock=lambda: now[0])
    texts = MemoryKeyValues(ttl_s=10, max_chars=10, clock=lambda: now[0])

    async def scenario() -> None:
        await pins.put("mf:a", "A")
        now[0] = 8
        assert await pins.get("mf:a") == "A"  # a use: it lasts 10 s from now
        now[0] = 16
        assert await pins.get("mf:a") == "A" and await pins.get("random:a") is None
        await pins.put("mf:b", "B")
        await pins.get("mf:a")
        await pins.put("mf:c", "C")  # over max_entries: b, the least recently used, goes
        assert await pins.get("mf:b") is None and pins.size() == 2
        now[0] = 100
        assert await pins.get("mf:a") is None
        await texts.put("one", "x" * 6)
        await texts.put("two", "y" * 4)
        await texts.put("two", "z" * 4)  # a value written again counts once
        assert texts.size() == 2
        await texts.put("three", "w")  # 11 characters: the oldest goes
        assert await texts.get("one") is None and await texts.get("two") == "zzzz" and texts.size() == 2

    asyncio.run(scenario())


def engine_for(strong: FakeUpstream, weak: FakeUpstream, **conversation: Any) -> RoutingEngine:
    routers = {"mf": {"type": "mf", "conversation": conversation}} if conversation else {"mf": {"type": "mf"}}
    return in_process_engine(load_app_config(fake_pair_args(strong, weak, routers=routers)).resolve_env({}))


def run_loop(
    engine: RoutingEngine, thresholds: list[float], between: Callable[[], object] = lambda: None
) -> list[tuple[str, str | None]]:
    """The agent's loop, each request at its threshold (``between`` runs after the first): who
    answered, and how it was decided."""

    async def scenario() -> list[tuple[str, str | None]]:
        answered = []
        for turns, threshold in zip(LOOP, thresholds, strict=True):
            body = request(f"router-mf-{threshold}", turns)
            outcome, _ = await engine.complete(body, conversation_of(body, header="loop"))
            assert outcome.decision is not None
            answered.append((outcome.model, outcome.decision.decided))
            if len(answered) == 1:
                between()
        return answered

    return asyncio.run(scenario())


def score_of(engine: RoutingEngine, turns: list[dict[str, Any]]) -> float:
    return asyncio.run(engine.route("router-mf-0.5", messages(*turns))).score


def test_a_tool_loop_and_its_follow_up_stay_on_the_model_that_started_while_threshold_and_checkpoint_change(
    strong: FakeUpstream, weak: FakeUpstream, tmp_path: Path
) -> None:
    engine = engine_for(strong, weak)
    start = score_of(engine, LOOP[0]) - 1e-3  # the first request goes to the strong model
    moved = 0.999  # then share control raises the threshold: afresh, every request would go to the weak one
    swapped = tmp_path / "mf-swapped"
    shutil.copytree(CHECKPOINT_DIR / "mf", swapped)
    router = engine.rankers["mf"].router  # type: ignore[attr-defined]
    answered = run_loop(engine, [start, moved, moved], between=lambda: router.swap_to(str(swapped)))
    assert answered == [("big", "fresh"), ("big", "inherited"), ("big", "pinned")]
    assert router.state.checkpoint == checkpoint_id(swapped)
    # The pin holds the decision it came from, made by the checkpoint in service then.
    decision = asyncio.run(
        engine.route(f"router-mf-{moved}", messages(*LOOP[1]), conversation_of(request("m", LOOP[1]), header="loop"))
    )
    assert decision.decided == "inherited" and decision.checkpoint == checkpoint_id(CHECKPOINT_DIR / "mf")


def test_with_stickiness_off_the_same_loop_flips_models(strong: FakeUpstream, weak: FakeUpstream) -> None:
    engine = engine_for(strong, weak, stickiness="off")
    start = score_of(engine, LOOP[0]) - 1e-3
    assert run_loop(engine, [start, 0.999, 0.999]) == [("big", None), ("small", None), ("small", None)]


@pytest.mark.parametrize(
    ("stickiness", "follow_up"),
    [("escalate_only", ("big", "fresh")), ("never", ("small", "pinned")), ("on_user_turn", ("big", "fresh"))],
)
def test_a_new_user_turn_escalates_by_the_stickiness(
    strong: FakeUpstream, weak: FakeUpstream, stickiness: str, follow_up: tuple[str, str]
) -> None:
    """The conversation starts on the weak model; its follow-up, afresh, would go to the strong one."""
    engine = engine_for(strong, weak, stickiness=stickiness)
    assert run_loop(engine, [0.999, 0.999, 0.001]) == [("small", "fresh"), ("small", "inherited"), follow_up]


def test_on_user_turn_also_moves_down_and_escalate_only_does_not(strong: FakeUpstream, weak: FakeUpstream) -> None:
    start = score_of(engine_for(strong, weak), LOOP[0]) - 1e-3
    down = run_loop(engine_for(strong, weak, stickiness="on_user_turn"), [start, 0.999, 0.999])
    assert down[-1] == ("small", "fresh")
    kept = run_loop(engine_for(strong, weak, stickiness="escalate_only"), [start, 0.999, 0.999])
    assert kept[-1] == ("big", "pinned")


def test_a_tool_loop_returns_to_the_model_that_answered_after_a_fallback(
    strong: FakeUpstream, weak: FakeUpstream
) -> None:
    engine = engine_for(strong, weak)
    start = score_of(engine, LOOP[0]) - 1e-3
    strong.behave("status", status=500)
    first = run_loop(engine, [start, start, 0.999])
    # The weak model answered the first request (and so called the tool): the loop stays with it.
    assert first == [("small", "fresh"), ("small", "inherited"), ("small", "pinned")]


def test_a_first_turn_asked_again_is_decided_afresh_and_a_request_may_ask_to_be_decided_alone(
    strong: FakeUpstream, weak: FakeUpstream
) -> None:
    engine = engine_for(strong, weak, stickiness="never")
    start = score_of(engine, LOOP[0]) - 1e-3

    async def scenario() -> list[tuple[str, str | None]]:
        answered = []
        for turns, threshold, stickiness in ((LOOP[0], start, None), (LOOP[0], 0.999, None), (LOOP[1], 0.999, "off")):
            body = request(f"router-mf-{threshold}", turns)
            outcome, _ = await engine.complete(body, conversation_of(body, stickiness=stickiness))
            assert outcome.decision is not None
            answered.append((outcome.model, outcome.decision.decided))
        return answered

    assert asyncio.run(scenario()) == [("big", "fresh"), ("small", "fresh"), ("small", None)]
    with pytest.raises(InvalidRequest, match="x-route-stickiness: 'sometimes' is not one of escalate_only"):
        conversation_of(request("m", [USER]), stickiness="sometimes")


def test_conversations_of_different_sessions_are_decided_apart(strong: FakeUpstream, weak: FakeUpstream) -> None:
    engine = engine_for(strong, weak)
    start = score_of(engine, LOOP[0]) - 1e-3

    async def scenario() -> list[str]:
        answered = []
        for session, threshold in (("a", start), ("b", 0.999)):
            body = request(f"router-mf-{threshold}", LOOP[0])
            outcome, _ = await engine.complete(body, conversation_of(body, header=session))
            answered.append(outcome.model)
        return answered

    assert asyncio.run(scenario()) == ["big", "small"]
