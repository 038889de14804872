"""The scenarios: one model or both failing, a stream cut, a replica lost under load, overload,
malformed and unauthenticated requests."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import httpx
import psutil

from bench.reliability.apis import APIS, CHAT, Api, api_at, chat
from bench.reliability.outcomes import Outcome, Tally, load, outcome_of
from bench.reliability.service import TO_STRONG, TO_WEAK, Service

# fault name → how the failing upstream misbehaves (None: its process is stopped, connections refused)
FAULTS: dict[str, dict[str, Any] | None] = {
    "http_500": {"mode": "status", "status": 500},
    "http_429": {"mode": "status", "status": 429, "retry_after": 30},
    "hang": {"mode": "hang"},
    "refused": None,
    "malformed_json": {"mode": "malformed"},
    "cut_before_first_token": {"mode": "cut", "cut_after": 0},
}


def one_upstream_failing(
    service: Service, fault: str, failing: str, stream: bool, requests: int, concurrency: int, api: Api = CHAT
) -> Tally:
    """The router's choice fails in one way, the other model is healthy."""
    service.reset()
    upstream = service.strong if failing == "strong" else service.weak
    behaviour = FAULTS[fault]
    if behaviour is None:
        upstream.refuse()
    else:
        upstream.behave(**behaviour)
    model = TO_STRONG if failing == "strong" else TO_WEAK
    name = f"{_on(api)}{failing} {fault} ({'stream' if stream else 'complete'})"
    return asyncio.run(load(service, name, [api.body(model, stream)] * requests, concurrency, api=api))


def stream_cut_midway(service: Service, requests: int, concurrency: int, api: Api = CHAT) -> Tally:
    """Bytes already sent: no switch, the stream ends with an error event (in the API's shape) instead."""
    service.reset()
    service.strong.behave("cut", chunks=4, cut_after=2)
    bodies = [api.body(TO_STRONG, True)] * requests
    return asyncio.run(load(service, f"{_on(api)}strong cut mid-stream (stream)", bodies, concurrency, api=api))


def _on(api: Api) -> str:
    return "" if api is CHAT else f"{api.path}: "


def both_down(service: Service, fault: str, stream: bool, requests: int, concurrency: int) -> Tally:
    service.reset()
    for upstream in (service.strong, service.weak):
        behaviour = FAULTS[fault]
        if behaviour is None:
            upstream.refuse()
        else:
            upstream.behave(**behaviour)
    name = f"both {fault} ({'stream' if stream else 'complete'})"
    return asyncio.run(load(service, name, [chat(TO_STRONG, stream)] * requests, concurrency))


def replica_processes(deployment: str) -> list[psutil.Process]:
    """Live replica processes of one deployment, found by the process title Ray gives them."""
    title = f"ServeReplica:router:{deployment}"
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if title in cmdline and "ray::" in cmdline:
            found.append(process)
    return found


def kill_one_replica(deployment: str) -> Callable[[], None]:
    def kill() -> None:
        processes = replica_processes(deployment)
        if not processes:
            raise RuntimeError(f"no replica process of {deployment} found")
        os.kill(processes[0].pid, signal.SIGKILL)

    return kill


def replica_killed_under_load(service: Service, deployment: str, requests: int, concurrency: int) -> Tally:
    """Steady routed load; one replica of ``deployment`` is killed (SIGKILL) a second in."""
    service.reset()
    bodies = [chat("router-mf-0.5", stream=i % 2 == 1) for i in range(requests)]
    tally = asyncio.run(
        load(service, f"kill a {deployment} replica under load", bodies, concurrency, kill_one_replica(deployment), 1.0)
    )
    return tally


def overload(service: Service, requests: int) -> Tally:
    """A slow weak model behind a full queue: the excess is told to come back later (503 + Retry-After)."""
    service.reset()
    service.weak.behave("ok", delay_s=0.3)
    return asyncio.run(load(service, "overload: slow weak model, queue of 8", [chat("small")] * requests, requests))


def _malformed_corpus() -> list[tuple[str, dict[str, str], bytes, str]]:
    """(case, extra headers, raw body, path) for requests that must each get a 4xx in OpenAI's shape."""
    ok = chat("router-mf-0.5")
    msg = ok["messages"][0]

    def body(**changes: Any) -> bytes:
        return json.dumps({**ok, **changes}).encode()

    def without(key: str) -> bytes:
        return json.dumps({k: v for k, v in ok.items() if k != key}).encode()

    cases: list[tuple[str, dict[str, str], bytes, str]] = [
        ("not JSON", {}, b"{", ""),
        ("empty body", {}, b"", ""),
        ("JSON array", {}, b"[]", ""),
        ("JSON string", {}, b'"hello"', ""),
        ("JSON null", {}, b"null", ""),
        ("no model", {}, without("model"), ""),
        ("no messages", {}, without("messages"), ""),
        ("model is a number", {}, body(model=5), ""),
        ("model is empty", {}, body(model=""), ""),
        ("model is 300 characters", {}, body(model="m" * 300), ""),
        ("messages is an object", {}, body(messages={"role": "user"}), ""),
        ("messages is empty", {}, body(messages=[]), ""),
        ("message without role", {}, body(messages=[{"content": "hi"}]), ""),
        ("unknown role", {}, body(messages=[{"role": "wizard", "content": "hi"}]), ""),
        ("content is a number", {}, body(messages=[{"role": "user", "content": 5}]), ""),
        ("unknown content part", {}, body(messages=[{"role": "user", "content": [{"type": "video"}]}]), ""),
        ("text part without text", {}, body(messages=[{"role": "user", "content": [{"type": "text"}]}]), ""),
        ("user content null", {}, body(messages=[{"role": "user", "content": None}]), ""),
        ("tool message without id", {}, body(messages=[{"role": "tool", "content": "x"}]), ""),
        ("tool_calls on a user message", {}, body(messages=[{**msg, "tool_calls": []}]), ""),
        ("stream is a string", {}, body(stream="yes"), ""),
        ("temperature is a string", {}, body(temperature="hot"), ""),
        ("temperature out of range", {}, body(temperature=5), ""),
        ("temperature NaN", {}, body(temperature=float("nan")), ""),
        ("max_tokens zero", {}, body(max_tokens=0), ""),
        ("max_tokens negative", {}, body(max_tokens=-1), ""),
        ("max_tokens fractional", {}, body(max_tokens=1.5), ""),
        ("n too large", {}, body(n=1000), ""),
        ("five stop sequences", {}, body(stop=["a", "b", "c", "d", "e"]), ""),
        ("stop is a number", {}, body(stop=5), ""),
        ("top_logprobs too large", {}, body(top_logprobs=50), ""),
        ("logit_bias is a list", {}, body(logit_bias=[1, 2]), ""),
        ("metadata values not strings", {}, body(metadata={"a": 1}), ""),
        ("unknown field", {}, body(foo="bar"), ""),
        ("unknown router", {}, body(model="router-nope-0.5"), ""),
        ("unknown model", {}, body(model="gpt-unknown"), ""),
        ("threshold above 1", {}, body(model="router-mf-2"), ""),
        ("threshold not a number", {}, body(model="router-mf-abc"), ""),
        ("threshold NaN", {}, body(model="router-mf-nan"), ""),
        ("strong share above 100%", {}, body(model="router-mf-101%"), ""),
        ("router name missing", {}, body(model="router--0.5"), ""),
        ("newline in model name", {}, body(model="router-mf\n-0.5"), ""),
        ("invalid UTF-8", {}, b'{"model": "\xff\xfe", "messages": []}', ""),
        ("unpaired surrogate in content", {}, body(messages=[{"role": "user", "content": "\ud800 hi"}]), ""),
        ("unpaired surrogate in model", {}, body(model="router-mf-\udfff"), ""),
        ("JSON nested 100,000 deep", {}, b"[" * 100_000 + b"]" * 100_000, ""),
        ("too many messages", {}, body(messages=[msg] * 1100), ""),
        ("text beyond the prompt limit", {}, body(messages=[{"role": "user", "content": "x" * 1_000_001}]), ""),
        ("body beyond 4 MiB", {}, body(messages=[{"role": "user", "content": "x" * (4 * 1024 * 1024)}]), ""),
        ("wrong content type", {"content-type": "text/plain"}, body(), ""),
        ("injection-looking request id", {"x-request-id": "'; DROP TABLE requests; --<script>"}, b"{", ""),
        ("encoded CRLF in request id", {"x-request-id": "abc%0d%0aSet-Cookie:%20session=1"}, b"{", ""),
        ("8 KB request id", {"x-request-id": "r" * 8192}, b"{", ""),
        ("forged routing headers", {"x-route-target": "big", "x-route-fallback": "none"}, body(messages=[]), ""),
        ("foreign host header", {"host": "evil.example"}, b"{", ""),
        ("route endpoint, bad body", {}, body(messages=[]), "/v1/route"),
        ("unknown path", {}, body(), "/v1/nothing-here"),
    ]
    return cases


def _other_apis_corpus() -> list[tuple[str, dict[str, str], bytes, str]]:
    """The Responses and Messages APIs' own malformed requests (each answered in its API's shape)."""
    responses, messages = APIS["responses"], APIS["messages"]

    def to(api: Api, **changes: Any) -> bytes:
        return json.dumps({**api.body("router-mf-0.5"), **changes}).encode()

    cases = [
        (f"{api.path}: {case}", {}, content, api.path)
        for api in (responses, messages)
        for case, content in [
            ("not JSON", b"{"),
            ("no model", json.dumps({k: v for k, v in api.body("m").items() if k != "model"}).encode()),
            ("unknown field", to(api, foo="bar")),
            ("unknown model", to(api, model="gpt-unknown")),
            ("stream is a string", to(api, stream="yes")),
            ("unpaired surrogate", to(api, model="router-mf-\udfff")),
        ]
    ]
    own: list[tuple[Api, str, bytes, dict[str, str]]] = [
        (responses, "unknown item", to(responses, input=[{"type": "item_reference", "id": "x"}]), {}),
        (responses, "hosted tool", to(responses, tools=[{"type": "web_search"}]), {}),
        (responses, "unknown previous response", to(responses, previous_response_id="resp_none"), {}),
        (responses, "background", to(responses, background=True), {}),
        (messages, "no max_tokens", to(messages, max_tokens=None), {}),
        (messages, "system role", to(messages, messages=[{"role": "system", "content": "x"}]), {}),
        (messages, "server tool", to(messages, tools=[{"type": "web_search_20250305"}]), {}),
        (messages, "unknown block", to(messages, messages=[{"role": "user", "content": [{"type": "video"}]}]), {}),
        (messages, "bad version", to(messages), {"anthropic-version": "june"}),
    ]
    return cases + [(f"{api.path}: {case}", headers, content, api.path) for api, case, content, headers in own]


MALFORMED_CORPUS = _malformed_corpus() + _other_apis_corpus()


def malformed_requests(service: Service) -> Tally:
    """Every case a 4xx in its API's error shape; afterwards the service still answers."""
    service.reset()
    tally = Tally(f"malformed requests ({len(MALFORMED_CORPUS)} kinds)")
    with httpx.Client(base_url=service.url, timeout=60) as client:
        for case, headers, content, path in MALFORMED_CORPUS:
            started = time.monotonic()
            try:
                response = client.post(
                    path or "/v1/chat/completions",
                    content=content,
                    headers=service.headers(**{"content-type": "application/json", **headers}),
                )
            except httpx.HTTPError as exc:
                tally.add(Outcome(time.monotonic() - started, f"transport {type(exc).__name__}", problem=case))
                continue
            outcome = outcome_of(response, time.monotonic() - started, api_at(path))
            if not 400 <= response.status_code < 500:
                outcome.problem = f"{case}: HTTP {response.status_code}"
            elif outcome.problem:
                outcome.problem = f"{case}: {outcome.problem}"
            leaked = [h for h in response.headers if h.startswith("x-route-") or h == "set-cookie"]
            if leaked:
                outcome.problem = f"{case}: the error response carries {leaked}"
            tally.add(outcome)
        healthy = client.post("/v1/chat/completions", json=chat("router-mf-0.5"), headers=service.headers())
        if healthy.status_code != 200:
            tally.problems.append(f"after the corpus, a good request got HTTP {healthy.status_code}")
    return tally


def unauthenticated(service: Service) -> Tally:
    """No key, a wrong key, a wrong scheme, a key with extra characters: each a 401."""
    service.reset()
    tally = Tally("missing or wrong API key")
    variants = [
        {},
        {"authorization": "Bearer sk-wrong"},
        {"authorization": f"Basic {service.api_key}"},
        {"authorization": f"Bearer {service.api_key}x"},
        {"authorization": f"Bearer {service.api_key[:-1]}"},
        {"authorization": "Bearer"},
        {"x-api-key": "sk-wrong"},
        {"x-api-key": f"{service.api_key}x"},
    ]
    paths = [(api.path, "POST", api) for api in APIS.values()] + [
        ("/v1/models", "GET", CHAT),
        ("/v1/route", "POST", CHAT),
    ]
    with httpx.Client(base_url=service.url, timeout=30) as client:
        for headers in variants:
            for path, method, api in paths:
                started = time.monotonic()
                response = client.request(method, path, json=api.body("router-mf-0.5"), headers=headers)
                outcome = outcome_of(response, time.monotonic() - started, api)
                if response.status_code != 401:
                    outcome.problem = f"{path} with {sorted(headers)}: HTTP {response.status_code}"
                tally.add(outcome)
    return tally
