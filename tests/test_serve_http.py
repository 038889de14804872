"""The composed graph on a real Ray cluster, through Serve's HTTP proxy, with the openai client."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest

from routing.calibration import load_calibration
from routing.offline.commands.prompts import read_prompts
from routing.resources import CHECKPOINT_DIR
from routing.serving.client import RouterClient
from routing.serving.request_log import read_request_log
from testing import ROOT
from testing import cluster as clusters
from testing.apps import fake_pair_args
from testing.fake_upstream import FakeUpstream

pytestmark = pytest.mark.cluster

PROMPT = "Write a short poem about the sea."


API_KEY = "sk-test-key-1"


@pytest.fixture(scope="module")
def request_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("request-log")


@pytest.fixture(scope="module")
def app_args(
    upstreams: dict[str, FakeUpstream], tmp_path_factory: pytest.TempPathFactory, request_log: Path
) -> dict[str, Any]:
    args = fake_pair_args(upstreams["strong"], upstreams["weak"])
    args["routers"]["mf_off"] = {"type": "mf", "share_control": "off"}
    # One attempt per request and no circuit breaker: each test here sees its own faults only.
    args["upstreams"]["strong"] |= {
        "timeouts": {"total_s": 2},
        "retry": {"max_retries": 0},
        "circuit_breaker": {"failure_threshold": 1000},
    }
    secret = tmp_path_factory.mktemp("secret") / "api-keys"
    secret.write_text(f"{API_KEY}\nsk-test-key-2\n")
    args["auth"] = {"api_keys_file": str(secret)}
    args["request_log"] = {"directory": str(request_log)}
    return args


@pytest.fixture(scope="module")
def service(app_args: dict[str, Any]) -> Iterator[str]:
    with clusters.in_process(app_args) as cluster:
        yield cluster.url


@pytest.fixture(scope="module")
def in_process(app_args: dict[str, Any]) -> Iterator[RouterClient]:
    """The same application in this process, without Ray (no HTTP, so no API key either)."""
    with RouterClient(app_args) as client:
        yield client


@pytest.fixture
def http(service: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service, timeout=30, headers={"authorization": f"Bearer {API_KEY}"}) as client:
        yield client


@pytest.fixture(params=["http", "in_process"])
def client(request: pytest.FixtureRequest) -> openai.OpenAI | RouterClient:
    """The openai client of the service, then the in-process client: the chat tests hold for both."""
    if request.param == "in_process":
        return request.getfixturevalue("in_process")
    service = request.getfixturevalue("service")
    return openai.OpenAI(base_url=f"{service}/v1", api_key=API_KEY, max_retries=0, timeout=30)


def ask(client: openai.OpenAI | RouterClient, model: str, **fields: Any):  # type: ignore[no-untyped-def]
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": PROMPT}], **fields
    )


def test_router_threshold_sends_each_prompt_to_one_upstream(client, http, strong, weak) -> None:  # type: ignore[no-untyped-def]
    decision = http.post(
        "/v1/route", json={"model": "router-mf-0.5", "messages": [{"role": "user", "content": PROMPT}]}
    ).json()
    assert set(decision) == {"router", "score", "threshold", "target", "candidates"} and decision["router"] == "mf"
    assert list(decision["candidates"]) == ["small", "big"] and decision["candidates"]["big"] == 1
    score = decision["score"]

    raw = ask(client, f"router-mf-{max(score - 1e-3, 0):.6f}")
    assert raw.headers["x-route-router"] == "mf" and raw.headers["x-route-target"] == "big"
    assert abs(float(raw.headers["x-route-score"]) - score) < 1e-5 and "x-route-fallback" not in raw.headers
    assert raw.parse().model == "big" and raw.parse().choices[0].message.content == "strong answer #1"
    assert len(strong.requests()) == 1 and weak.requests() == []

    raw = ask(client, f"router-mf-{min(score + 1e-3, 1):.6f}")
    assert raw.headers["x-route-target"] == "small" and raw.parse().model == "small"
    assert len(strong.requests()) == 1 and len(weak.requests()) == 1
    assert weak.requests()[0]["body"]["messages"] == [{"role": "user", "content": PROMPT}]


def test_strong_share_syntax_uses_the_checkpoints_calibration(client) -> None:  # type: ignore[no-untyped-def]
    table = load_calibration(CHECKPOINT_DIR / "mf")
    assert table is not None
    raw = ask(client, "router-mf-30%")
    assert raw.headers["x-route-strong-percent"] == "30"
    assert float(raw.headers["x-route-threshold"]) == pytest.approx(table.threshold(30), abs=1e-6)
    target = "big" if float(raw.headers["x-route-score"]) >= table.threshold(30) else "small"
    assert raw.headers["x-route-target"] == target == raw.parse().model


@pytest.mark.parametrize("header", [None, "Bearer sk-wrong", "Bearer sk-test-key-", "Basic sk-test-key-1"])
def test_requests_without_a_valid_key_are_401(service: str, header: str | None, strong: FakeUpstream) -> None:
    headers = {"authorization": header} if header else {}
    body = {"model": "router-mf-0.5", "messages": [{"role": "user", "content": PROMPT}]}
    with httpx.Client(base_url=service, timeout=30, headers=headers) as anonymous:
        for method, path in (("POST", "/v1/chat/completions"), ("POST", "/v1/route"), ("GET", "/v1/models")):
            response = anonymous.request(method, path, json=body if method == "POST" else None)
            assert response.status_code == 401, response.text
            error = response.json()["error"]
            assert error["type"] == "invalid_request_error" and error["code"] in ("missing_api_key", "invalid_api_key")
        # Not even a malformed body is looked at before the key.
        assert anonymous.post("/v1/chat/completions", content=b"{not json").status_code == 401
        assert anonymous.get("/health").status_code == 200
    assert strong.requests() == []
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{service}/v1", api_key="sk-wrong", max_retries=0).models.list()
    second = openai.OpenAI(base_url=f"{service}/v1", api_key="sk-test-key-2", max_retries=0)
    assert "router-mf" in [m.id for m in second.models.list()]


def test_the_ingress_writes_the_request_log(client, request_log: Path) -> None:  # type: ignore[no-untyped-def]
    content = f"logged question {time.time()}"
    client.chat.completions.create(model="router-random-0", messages=[{"role": "user", "content": content}])
    (record,) = [r for r in read_request_log(request_log) if r.messages and r.messages[0].content == content]
    assert (record.router, record.target, record.answered_by) == ("random", "big", "big")


def test_a_tool_loop_keeps_its_model_and_says_so(service: str, request_log: Path, strong, weak) -> None:  # type: ignore[no-untyped-def]
    """The official client drives an agent's loop under one x-session-id: the tool's result and the
    follow-up stay on the first turn's model while the threshold asked for moves; the headers and
    the request log say how each was decided."""
    agent = openai.OpenAI(base_url=f"{service}/v1", api_key=API_KEY, max_retries=0, timeout=30)
    session = f"agent-{time.time()}"
    call = {"id": "call_1", "type": "function", "function": {"name": "run_tests", "arguments": "{}"}}
    first = [{"role": "user", "content": PROMPT}]
    tool = [{"role": "assistant", "tool_calls": [call]}, {"role": "tool", "tool_call_id": "call_1", "content": "ok"}]
    follow_up = [{"role": "assistant", "content": "Done."}, {"role": "user", "content": "now commit it"}]
    loop = [first, [*first, *tool], [*first, *follow_up]]
    answered = []
    for messages, threshold in zip(loop, ["0", "1", "1"], strict=True):
        raw = agent.chat.completions.with_raw_response.create(
            model=f"router-mf-{threshold}", messages=messages, extra_headers={"x-session-id": session}
        )
        assert raw.headers["x-route-session"] == f"header:{session}"
        answered.append((raw.parse().model, raw.headers["x-route-decided"]))
    assert answered == [("big", "fresh"), ("big", "inherited"), ("big", "pinned")]
    logged = [r for r in read_request_log(request_log) if r.session == f"header:{session}"]
    assert [(r.answered_by, r.decided) for r in logged] == answered

    bad = httpx.post(
        f"{service}/v1/chat/completions",
        json={"model": "router-mf", "messages": first},
        headers={"authorization": f"Bearer {API_KEY}", "x-route-stickiness": "sometimes"},
        timeout=30,
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "x-route-stickiness"


def test_direct_model_names_bypass_routing(client, strong, weak) -> None:  # type: ignore[no-untyped-def]
    raw = ask(client, "small", max_tokens=3)
    assert raw.parse().model == "small" and "x-route-router" not in raw.headers
    assert weak.requests()[0]["body"]["max_tokens"] == 3 and strong.requests() == []


def test_openai_client_streams_chunk_by_chunk(client, strong) -> None:  # type: ignore[no-untyped-def]
    strong.behave("ok", chunks=4, delay_s=0.3)
    started, arrivals, pieces = time.monotonic(), [], []
    with client.chat.completions.create(
        model="router-random-0", stream=True, messages=[{"role": "user", "content": PROMPT}]
    ) as stream:
        for chunk in stream:
            arrivals.append(time.monotonic() - started)
            pieces.append(chunk.choices[0].delta.content or "")
            assert chunk.model == "big"
    assert "".join(pieces) == "strong answer #1" and len(pieces) == 6  # role, 4 pieces, finish
    assert arrivals[-1] - arrivals[1] > 0.6  # pieces arrived as produced, not all at the end


def test_stream_failure_after_first_bytes_ends_with_an_error_event(http, strong, weak) -> None:  # type: ignore[no-untyped-def]
    strong.behave("cut", chunks=2)
    response = http.post(
        "/v1/chat/completions",
        json={"model": "router-random-0", "stream": True, "messages": [{"role": "user", "content": PROMPT}]},
    )
    assert response.status_code == 200 and response.headers["x-route-target"] == "big"
    events = [line.removeprefix("data: ") for line in response.text.splitlines() if line.startswith("data: ")]
    error = json.loads(events[-1])["error"]
    assert error["type"] == "upstream_error" and "big" in error["message"]
    assert "[DONE]" not in events and weak.requests() == []


def test_stream_failure_after_first_bytes_is_raised_from_the_iteration(client, strong, weak) -> None:  # type: ignore[no-untyped-def]
    strong.behave("cut", chunks=2)
    stream = client.chat.completions.create(
        model="router-random-0", stream=True, messages=[{"role": "user", "content": PROMPT}]
    )
    pieces = []
    with pytest.raises(openai.APIError) as raised:
        for chunk in stream:
            pieces.append(chunk.choices[0].delta.content)
    assert raised.value.type == "upstream_error" and "big" in raised.value.message
    assert pieces == ["", "strong a", "nswer #1"] and weak.requests() == []


def test_failing_strong_model_falls_back_with_a_header(client, strong, weak) -> None:  # type: ignore[no-untyped-def]
    strong.behave("status", status=500)
    raw = ask(client, "router-random-0")
    assert raw.headers["x-route-target"] == "big" and raw.headers["x-route-fallback"] == "upstream_error"
    assert raw.parse().model == "small"
    streamed = client.chat.completions.with_raw_response.create(
        model="router-random-0", stream=True, messages=[{"role": "user", "content": PROMPT}]
    )
    assert streamed.headers["x-route-fallback"] == "upstream_error"
    assert "".join(c.choices[0].delta.content or "" for c in streamed.parse()) == "weak answer #2"


def test_upstream_failure_is_502_and_timeout_is_504(client, strong) -> None:  # type: ignore[no-untyped-def]
    body = {"model": "big", "messages": [{"role": "user", "content": PROMPT}]}
    strong.behave("status", status=500)
    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(**body)
    assert failed.value.status_code == 502 and failed.value.type == "upstream_error"
    strong.behave("hang")
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError) as timed_out:
        client.chat.completions.create(**body)
    assert timed_out.value.status_code == 504 and timed_out.value.code == "upstream_timeout"
    assert time.monotonic() - started < 10
    with pytest.raises(openai.InternalServerError) as timed_out:
        client.chat.completions.create(**body, stream=True)
    assert timed_out.value.status_code == 504


MALFORMED: list[tuple[str, Any, int, str | None]] = [
    ("not json", b"{bad json", 400, None),
    ("json array", b"[1, 2]", 400, None),
    ("empty body", b"", 400, None),
    ("missing messages", {"model": "router-mf-0.5"}, 400, "messages"),
    ("empty messages", {"model": "router-mf-0.5", "messages": []}, 400, "messages"),
    ("bad role", {"model": "router-mf-0.5", "messages": [{"role": "wizard", "content": "x"}]}, 400, "messages[0].role"),
    ("no user turn", {"model": "router-mf-0.5", "messages": [{"role": "system", "content": "x"}]}, 400, "messages"),
    ("content not text", {"model": "big", "messages": [{"role": "user", "content": 42}]}, 400, "messages[0].content"),
    ("text/plain body", b'{"model": "big"}', 400, None),
    ("missing model", {"messages": [{"role": "user", "content": "x"}]}, 400, "model"),
    (
        "unknown field",
        {"model": "big", "messages": [{"role": "user", "content": "x"}], "temprature": 1},
        400,
        "temprature",
    ),
    (
        "wrong type",
        {"model": "big", "messages": [{"role": "user", "content": "x"}], "max_tokens": "ten"},
        400,
        "max_tokens",
    ),
    ("unknown router", {"model": "router-nope-0.5", "messages": [{"role": "user", "content": "x"}]}, 404, "model"),
    ("unknown model", {"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]}, 404, "model"),
    (
        "threshold not a number",
        {"model": "router-mf-high", "messages": [{"role": "user", "content": "x"}]},
        400,
        "model",
    ),
    ("threshold above 1", {"model": "router-mf-1.5", "messages": [{"role": "user", "content": "x"}]}, 400, "model"),
    ("threshold negative", {"model": "router-mf--0.5", "messages": [{"role": "user", "content": "x"}]}, 400, "model"),
    ("share above 100%", {"model": "router-mf-130%", "messages": [{"role": "user", "content": "x"}]}, 400, "model"),
    ("share not a number", {"model": "router-mf-lots%", "messages": [{"role": "user", "content": "x"}]}, 400, "model"),
]


@pytest.mark.parametrize(("case", "body", "status", "param"), MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_requests_get_openai_errors(http, case, body, status, param) -> None:  # type: ignore[no-untyped-def]
    for path in ("/v1/chat/completions", "/v1/route"):
        if isinstance(body, bytes):
            content_type = "text/plain" if case == "text/plain body" else "application/json"
            response = http.post(path, content=body, headers={"content-type": content_type})
        else:
            response = http.post(path, json=body)
        assert response.status_code == status, (path, response.text)
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["message"]
        assert "Traceback" not in response.text
        assert error["param"] == param, (path, error)


@pytest.mark.parametrize("body", [pytest.param(c[1], id=c[0]) for c in MALFORMED if isinstance(c[1], dict)])
def test_malformed_requests_in_process_get_the_services_errors(http, in_process, body) -> None:  # type: ignore[no-untyped-def]
    over_http = http.post("/v1/chat/completions", json=body)
    with pytest.raises(openai.APIStatusError) as raised:
        in_process.chat.completions.create(**body)
    assert raised.value.status_code == over_http.status_code and raised.value.body == over_http.json()["error"]


def test_service_is_healthy_after_bad_requests(http, client, strong) -> None:  # type: ignore[no-untyped-def]
    for body in MALFORMED:
        http.post("/v1/chat/completions", content=json.dumps(body[1]) if not isinstance(body[1], bytes) else body[1])
    assert http.get("/health").json()["status"] == "ready"
    assert ask(client, "router-random-0").parse().choices[0].message.content == "strong answer #1"


def test_models_and_unknown_paths(http, client) -> None:  # type: ignore[no-untyped-def]
    assert [m.id for m in client.models.list()] == ["router-random", "router-mf", "router-mf_off", "big", "small"]
    response = http.get("/v1/nothing-here")
    assert response.status_code == 404 and response.json()["error"]["type"] == "not_found_error"
    assert http.get("/health/live").json() == {"status": "live"}
    assert http.get("/health").json() == {
        "status": "ready",
        "upstreams": {"big": "configured", "small": "configured"},
        "circuits": {"big": "closed", "small": "closed"},
    }


def test_an_application_without_a_learner_says_so(http) -> None:  # type: ignore[no-untyped-def]
    response = http.get("/health/learner")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "message": "this application has no learner",
        "type": "not_found_error",
        "param": None,
        "code": None,
    }


def replay(http: httpx.Client, model: str, prompts: list[str]) -> list[dict[str, Any]]:
    """Each prompt's routing decision, 8 requests in flight as a busy client sends them."""

    def route(prompt: str) -> dict[str, Any]:
        response = http.post("/v1/route", json={"model": model, "messages": [{"role": "user", "content": prompt}]})
        assert response.status_code == 200, response.text
        return response.json()

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(route, prompts))


def test_a_share_holds_on_traffic_unlike_the_calibration_pool(http) -> None:  # type: ignore[no-untyped-def]
    """GSM8K's prompts score higher than the calibration pool's: the table's 30 % threshold sends
    most of them to the strong model. With share control (the default) every block of 200 after
    the first 200 requests holds 30 ± 2 %; with it off the table's threshold stays."""
    prompts = read_prompts(ROOT / "data" / "eval" / "gsm8k.jsonl.gz")
    table = load_calibration(CHECKPOINT_DIR / "mf")
    assert table is not None and len(prompts) == 1307

    held = replay(http, "router-mf-30%", prompts)
    strong = np.array([d["target"] == "big" for d in held])
    blocks = [100 * strong[i : i + 200].mean() for i in range(200, len(prompts) - 199, 200)]
    assert len(blocks) == 5 and all(abs(b - 30) <= 2 for b in blocks), blocks
    assert {d["strong_percent"] for d in held} == {30}
    live = {d["threshold"] for d in held[300:]}
    assert len(live) > 1 and min(live) > table.threshold(30)
    fixed = replay(http, "router-mf_off-30%", prompts)
    assert all(d["threshold"] == pytest.approx(table.threshold(30), abs=1e-6) for d in fixed)
    assert 100 * np.mean([d["target"] == "big" for d in fixed]) > 60
    one = {"model": "router-mf-0.42", "messages": [{"role": "user", "content": "x"}]}
    assert http.post("/v1/route", json=one).json()["threshold"] == pytest.approx(0.42)


def test_a_bare_router_alias_sends_its_default_share(http) -> None:  # type: ignore[no-untyped-def]
    """router-mf means 50 % to the strong model, held on MMLU's questions (not the calibration
    pool): over the first 1,000 requests and in every block of 200 after the first 200, 50 ± 5 %."""
    unique = list(dict.fromkeys(read_prompts(ROOT / "data" / "eval" / "mmlu.jsonl.gz")))
    prompts = [unique[i] for i in np.random.default_rng(0).permutation(len(unique))[:1400]]
    decisions = replay(http, "router-mf", prompts)
    strong = np.array([d["target"] == "big" for d in decisions])
    assert {d["strong_percent"] for d in decisions} == {50}
    assert abs(100 * strong[:1000].mean() - 50) <= 5, 100 * strong[:1000].mean()
    blocks = [100 * strong[i : i + 200].mean() for i in range(200, len(prompts) - 199, 200)]
    assert len(blocks) == 6 and all(abs(b - 50) <= 5 for b in blocks), blocks
