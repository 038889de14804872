"""Reliability report: the service under failing upstreams, lost replicas, bad requests and missing keys.

    python -m bench.reliability [--requests 16] [--concurrency 4] [--json report.json]

Starts two fake OpenAI-compatible upstreams (``bench/fake_upstream.py``) and a private Ray
cluster running the application of ``serve_config.yaml``, pointed at them, with short time
limits and prices. Then it runs every scenario over HTTP and prints, per scenario, the requests
sent, answered, failed by reason (status and error code), the fallbacks by reason, and latency.
It ends with what operators would check: the Prometheus metrics, and whether any API key
appears in any log line.

The tests (``tests/test_reliability.py``) run the same scenarios and assert on their tallies.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bench.cluster import deployed
from bench.fake_upstream import FakeUpstream

ROOT = Path(__file__).resolve().parents[1]
LIMITS = {"connect_s": 1.0, "first_token_s": 1.0, "total_s": 2.0}
RETRY = {"max_retries": 2, "backoff_initial_s": 0.02, "backoff_max_s": 0.2}
BREAKER = {"failure_threshold": 5, "cooldown_s": 1.0}
TO_STRONG, TO_WEAK = "router-random-0", "router-random-1"  # random scores are in [0, 1)
PROMPT = "Explain the difference between a process and a thread."
METRICS = (
    "ray_routellm_decisions_total",
    "ray_routellm_router_score",
    "ray_routellm_strong_share",
    "ray_routellm_fallbacks_total",
    "ray_routellm_upstream_latency_seconds",
    "ray_routellm_upstream_errors_total",
    "ray_routellm_upstream_retries_total",
    "ray_routellm_tokens_total",
    "ray_routellm_cost_usd_total",
    "ray_routellm_cost_all_strong_usd_total",
    "ray_routellm_cost_saved_usd_total",
)
# Counted only when a replica dies with a routing step in flight, which a kill does not always catch.
ROUTING_RETRIES = "ray_routellm_routing_retries_total"


# ---------------------------------------------------------------- the service under test


@dataclass
class Service:
    url: str
    metrics_url: str
    workdir: Path
    api_key: str
    upstream_key: str
    strong: FakeUpstream
    weak: FakeUpstream

    def headers(self, **extra: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.api_key}", **extra}

    def reset(self) -> None:
        """Healthy upstreams, closed circuits: each scenario starts from the same state."""
        self.strong.reset()
        self.weak.reset()
        time.sleep(BREAKER["cooldown_s"] + 0.1)
        with httpx.Client(base_url=self.url, timeout=30, headers=self.headers()) as client:
            for model in ("big", "small"):  # a successful trial call closes a half-open circuit
                client.post("/v1/chat/completions", json=chat(model)).raise_for_status()
            circuits = client.get("/health").json()["circuits"]
        assert set(circuits.values()) == {"closed"}, circuits
        self.strong.reset()
        self.weak.reset()


def application_config(strong: FakeUpstream, weak: FakeUpstream, keys_file: Path) -> dict[str, Any]:
    """``serve_config.yaml`` with both models on the fake upstreams and two mf router replicas."""
    config = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    app = config["applications"][0]
    common = {"timeouts": LIMITS, "retry": RETRY, "circuit_breaker": BREAKER}
    app["args"]["upstreams"] = {
        "strong": {
            "backend": "openai",
            "model": "big",
            "base_url": strong.base_url,
            "api_key_env": "RELIABILITY_STRONG_KEY",
            "price": {"input_per_million": 2.5, "output_per_million": 10.0},
            **common,
        },
        "weak": {
            "backend": "openai",
            "model": "small",
            "base_url": weak.base_url,
            "price": {"input_per_million": 0.15, "output_per_million": 0.6},
            **common,
        },
    }
    app["args"]["routers"] = {"random": {"type": "random"}, "mf": {"type": "mf"}}
    app["args"]["auth"] = {"api_keys_file": str(keys_file)}
    app["deployments"] = [
        {"name": "Ingress", "max_ongoing_requests": 256, "ray_actor_options": {"num_cpus": 0.2}},
        {"name": "Embedding", "ray_actor_options": {"num_cpus": 0.3}},
        {"name": "Router-random", "ray_actor_options": {"num_cpus": 0.05}},
        {"name": "Router-mf", "num_replicas": 2, "ray_actor_options": {"num_cpus": 0.05}},
        {"name": "LLM-strong", "ray_actor_options": {"num_cpus": 0.1}},
        # A small queue in front of the weak model, so that the overload scenario can fill it.
        {
            "name": "LLM-weak",
            "max_ongoing_requests": 8,
            "max_queued_requests": 8,
            "ray_actor_options": {"num_cpus": 0.1},
        },
    ]
    return config


@contextmanager
def running_service(workdir: Path) -> Iterator[Service]:
    """A private Ray cluster deploying the config as ``serve run`` does, against fresh fake upstreams."""
    strong, weak = FakeUpstream("strong"), FakeUpstream("weak")
    api_key, upstream_key = f"sk-ingress-{secrets.token_hex(12)}", f"sk-upstream-{secrets.token_hex(12)}"
    keys_file = workdir / "api-keys"
    keys_file.write_text(f"# rotated monthly\n{api_key}\n")
    config = application_config(strong, weak, keys_file)
    config["logging_config"] = {"encoding": "JSON", "log_level": "INFO", "logs_dir": str(workdir / "serve-logs")}
    # Replicas inherit the environment of the cluster this process starts: the strong model's key
    # reaches its replica only, as a Kubernetes Secret would.
    os.environ["RELIABILITY_STRONG_KEY"] = upstream_key
    try:
        with deployed(config, workdir) as cluster:
            yield Service(
                url=cluster.url,
                metrics_url=cluster.metrics_url,
                workdir=workdir,
                api_key=api_key,
                upstream_key=upstream_key,
                strong=strong,
                weak=weak,
            )
    finally:
        strong.stop()
        weak.stop()
        os.environ.pop("RELIABILITY_STRONG_KEY", None)


# ---------------------------------------------------------------- sending requests, counting outcomes


def chat(model: str, stream: bool = False, **fields: Any) -> dict[str, Any]:
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": PROMPT}], **fields}


@dataclass
class Tally:
    scenario: str
    sent: int = 0
    answered: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    fallbacks: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.sent += 1
        self.latencies_s.append(outcome.seconds)
        if outcome.failure is None:
            self.answered += 1
        else:
            self.failed[outcome.failure] += 1
        if outcome.fallback:
            self.fallbacks[outcome.fallback] += 1
        if outcome.problem:
            self.problems.append(outcome.problem)

    def row(self) -> dict[str, Any]:
        lat = sorted(self.latencies_s) or [0.0]
        return {
            "scenario": self.scenario,
            "sent": self.sent,
            "answered": self.answered,
            "failed": dict(self.failed),
            "fallbacks": dict(self.fallbacks),
            "p50_s": round(statistics.median(lat), 3),
            "max_s": round(lat[-1], 3),
            "problems": self.problems[:5],
        }


@dataclass
class Outcome:
    seconds: float
    failure: str | None = None  # "<status> <code>", "stream_error <code>" or "transport <exception>"
    fallback: str | None = None
    problem: str | None = None  # a response that breaks the contract: not OpenAI's error shape, no [DONE]


def _error_problem(response: httpx.Response) -> str | None:
    """None when the body is OpenAI's error JSON, else what is wrong with it."""
    try:
        error = response.json()["error"]
        assert isinstance(error["message"], str) and isinstance(error["type"], str)
        assert set(error) == {"message", "type", "param", "code"}
    except Exception:
        return f"HTTP {response.status_code} without OpenAI's error shape: {response.text[:120]!r}"
    return None


async def send_one(client: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str]) -> Outcome:
    started = time.monotonic()
    try:
        if not body.get("stream"):
            response = await client.post("/v1/chat/completions", json=body, headers=headers)
            return _outcome(response, time.monotonic() - started)
        async with client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response:
            if response.status_code != 200:
                await response.aread()
                return _outcome(response, time.monotonic() - started)
            events = [line[6:] async for line in response.aiter_lines() if line.startswith("data: ")]
        seconds = time.monotonic() - started
        fallback = response.headers.get("x-route-fallback")
        errors = [json.loads(e)["error"] for e in events if e != "[DONE]" and "error" in json.loads(e)]
        if errors:
            return Outcome(seconds, f"stream_error {errors[0].get('code')}", fallback)
        if events[-1:] != ["[DONE]"]:
            return Outcome(seconds, "stream_error unterminated", fallback, "a stream ended without [DONE]")
        return Outcome(seconds, None, fallback)
    except httpx.HTTPError as exc:
        return Outcome(time.monotonic() - started, f"transport {type(exc).__name__}")


def _outcome(response: httpx.Response, seconds: float) -> Outcome:
    fallback = response.headers.get("x-route-fallback")
    if response.status_code == 200:
        return Outcome(seconds, None, fallback)
    problem = _error_problem(response)
    code = None if problem else response.json()["error"]["code"]
    failure = f"{response.status_code} {code}"
    if response.status_code == 503 and "retry-after" not in response.headers:
        problem = problem or "a 503 without Retry-After"
    return Outcome(seconds, failure, fallback, problem)


async def load(
    service: Service,
    scenario: str,
    bodies: list[dict[str, Any]],
    concurrency: int,
    during: Callable[[], None] | None = None,
    during_at_s: float = 0.0,
) -> Tally:
    """Sends ``bodies`` with ``concurrency`` in flight; ``during`` runs once, ``during_at_s`` in."""
    tally, queue = Tally(scenario), list(enumerate(bodies))
    async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:

        async def worker() -> None:
            while queue:
                _, body = queue.pop(0)
                tally.add(await send_one(client, body, service.headers()))

        async def disrupt() -> None:
            if during is not None:
                await asyncio.sleep(during_at_s)
                await asyncio.to_thread(during)

        await asyncio.gather(disrupt(), *(worker() for _ in range(concurrency)))
    return tally


# ---------------------------------------------------------------- scenarios

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
    service: Service, fault: str, failing: str, stream: bool, requests: int, concurrency: int
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
    name = f"{failing} {fault} ({'stream' if stream else 'complete'})"
    return asyncio.run(load(service, name, [chat(model, stream)] * requests, concurrency))


def stream_cut_midway(service: Service, requests: int, concurrency: int) -> Tally:
    """Bytes already sent: no switch, the stream ends with an error event instead."""
    service.reset()
    service.strong.behave("cut", chunks=4, cut_after=2)
    return asyncio.run(load(service, "strong cut mid-stream (stream)", [chat(TO_STRONG, True)] * requests, concurrency))


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


MALFORMED_CORPUS = _malformed_corpus()


def malformed_requests(service: Service) -> Tally:
    """Every case a 4xx in OpenAI's error shape; afterwards the service still answers."""
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
            outcome = _outcome(response, time.monotonic() - started)
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
        {"x-api-key": service.api_key},
    ]
    with httpx.Client(base_url=service.url, timeout=30) as client:
        for headers in variants:
            for path, method in (("/v1/chat/completions", "POST"), ("/v1/models", "GET"), ("/v1/route", "POST")):
                started = time.monotonic()
                response = client.request(method, path, json=chat("router-mf-0.5"), headers=headers)
                outcome = _outcome(response, time.monotonic() - started)
                if response.status_code != 401:
                    outcome.problem = f"{path} with {sorted(headers)}: HTTP {response.status_code}"
                tally.add(outcome)
    return tally


# ---------------------------------------------------------------- what operators look at


def scrape_metrics(service: Service, expected: tuple[str, ...] = METRICS, wait_s: float = 30.0) -> dict[str, float]:
    """Each routellm metric summed over its series (histograms: their observation count; gauges:
    the largest series), waiting up to ``wait_s`` for ``expected`` to reach Ray's exporter."""
    deadline = time.monotonic() + wait_s
    while True:
        totals: dict[str, float] = {}
        for family in text_string_to_metric_families(httpx.get(service.metrics_url, timeout=10).text):
            for sample in family.samples:
                if not sample.name.startswith("ray_routellm_"):
                    continue
                if family.type == "histogram" and not sample.name.endswith("_count"):
                    continue
                key = sample.name.removesuffix("_count")
                if family.type == "gauge":
                    totals[key] = max(totals.get(key, 0.0), sample.value)
                else:
                    totals[key] = totals.get(key, 0.0) + sample.value
        if all(totals.get(m, 0) > 0 for m in expected) or time.monotonic() > deadline:
            return totals
        time.sleep(2)


def keys_in_logs(service: Service) -> dict[str, int]:
    """Occurrences of each API key in every file under the cluster's and Serve's log folders."""
    found = {"ingress key": 0, "upstream key": 0}
    for path in service.workdir.rglob("*"):
        if not path.is_file() or path.name == "api-keys":
            continue
        try:
            text = path.read_bytes()
        except OSError:
            continue
        found["ingress key"] += text.count(service.api_key.encode())
        found["upstream key"] += text.count(service.upstream_key.encode())
    return found


def request_id_round_trip(service: Service) -> dict[str, Any]:
    """A client's ``x-request-id`` comes back in the response and appears in the ingress's log line."""
    request_id = f"reliability-{secrets.token_hex(6)}"
    response = httpx.post(
        f"{service.url}/v1/chat/completions",
        json=chat("router-mf-0.5"),
        headers=service.headers(**{"x-request-id": request_id}),
        timeout=30,
    )
    time.sleep(1)
    logged = []
    for path in (service.workdir / "serve-logs").rglob("*Ingress*"):
        for line in path.read_text(errors="replace").splitlines():
            if request_id in line:
                logged.append(json.loads(line))
    return {
        "status": response.status_code,
        "echoed": response.headers.get("x-request-id") == request_id,
        "log_lines": [entry.get("message", "") for entry in logged],
    }


# ---------------------------------------------------------------- the report


def scenarios(requests: int, concurrency: int) -> Iterator[Callable[[Service], Tally]]:
    """Every scenario of the report, in order, as a call on the running service."""
    for failing in ("strong", "weak"):
        for fault in FAULTS:
            for stream in (False, True) if not fault.startswith("cut") else (True,):
                yield lambda s, f=fault, w=failing, st=stream: one_upstream_failing(s, f, w, st, requests, concurrency)
    yield lambda s: stream_cut_midway(s, requests, concurrency)
    for fault in ("http_500", "hang", "refused"):
        for stream in (False, True):
            yield lambda s, f=fault, st=stream: both_down(s, f, st, requests, concurrency)
    for deployment in ("Router-mf", "Embedding"):
        yield lambda s, d=deployment: replica_killed_under_load(s, d, 6 * requests, concurrency)
    yield lambda s: overload(s, 40)
    yield malformed_requests
    yield unauthenticated


def print_row(tally: Tally) -> None:
    row = tally.row()

    def fmt(counts: dict[str, int]) -> str:
        return ", ".join(f"{k} ×{v}" for k, v in sorted(counts.items())) or "—"

    print(
        f"| {row['scenario']} | {row['sent']} | {row['answered']} | {fmt(row['failed'])} | "
        f"{fmt(row['fallbacks'])} | {row['p50_s']:.2f} | {row['max_s']:.2f} |",
        flush=True,
    )


def print_problems(tallies: list[Tally]) -> None:
    problems = [(t.scenario, p) for t in tallies for p in t.problems]
    print(f"\ncontract problems: {len(problems)}")
    for scenario, problem in problems:
        print(f"  {scenario}: {problem}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=16, help="requests per fault scenario")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rl-", dir="/tmp") as tmp, running_service(Path(tmp)) as service:
        print(f"service up in {time.monotonic() - started:.0f} s at {service.url}\n", file=sys.stderr)
        print("| scenario | sent | answered | failed (by reason) | fallbacks (by reason) | p50 s | max s |")
        print("|---|---:|---:|---|---|---:|---:|")
        tallies = []
        for scenario in scenarios(args.requests, args.concurrency):
            tallies.append(scenario(service))
            print_row(tallies[-1])
        print_problems(tallies)
        metrics = scrape_metrics(service)
        print("\nmetrics at " + service.metrics_url.replace(service.metrics_url.split("/metrics")[0], "<node>"))
        for name in (*METRICS, ROUTING_RETRIES):
            print(f"  {name}: {metrics.get(name, 0):g}")
        request_id = request_id_round_trip(service)
        print(f"\nx-request-id: echoed {request_id['echoed']}, ingress log lines {request_id['log_lines']}")
        keys = keys_in_logs(service)
        print(f"API keys found in logs: {keys}")
        print(f"\nwall time: {time.monotonic() - started:.0f} s")
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "scenarios": [t.row() for t in tallies],
                        "metrics": metrics,
                        "request_id": request_id,
                        "keys_in_logs": keys,
                    },
                    indent=2,
                )
            )


if __name__ == "__main__":
    main()
