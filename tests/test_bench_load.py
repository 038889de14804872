"""The benchmarks' load generators (the Python one and k6), against the fake upstream server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.replica_profile import parts
from testing.fake_upstream import FakeUpstream
from testing.k6_load import run_k6
from testing.load import chat_bodies, run_load, sample_prompts


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    server = FakeUpstream("bench")
    yield server
    server.stop()


def test_every_request_is_counted_with_its_status(upstream: FakeUpstream) -> None:
    upstream.reset()
    upstream.behave("status", status=503, times=5)
    result = run_load(upstream.base_url + "/chat/completions", chat_bodies(["a", "b"], "m"), 4, requests=20)
    assert result.statuses == {"503": 5, "200": 15}
    assert result.answered == 15 and result.errors == 5 and len(result.latencies_ms) == 20
    bodies = [r["body"] for r in upstream.requests()]
    assert [b["messages"][0]["content"] for b in bodies].count("a") == 10


def test_a_timed_run_measures_latency_of_a_slow_upstream(upstream: FakeUpstream) -> None:
    upstream.reset()
    upstream.behave("ok", delay_s=0.2, record=False)
    result = run_load(upstream.base_url + "/chat/completions", chat_bodies(["a"], "m"), 8, duration_s=1.0)
    summary = result.summary()
    assert summary["errors"] == 0 and summary["answered"] >= 8
    # Bounds the upstream's delay sets whatever else runs on the machine: every answer waited for
    # it, and 8 clients that each wait for their answer cannot exceed 8 / 0.2 s requests/s.
    assert summary["p50_ms"] >= 200
    assert 0 < summary["requests_per_s"] <= 8 / 0.2 + 1


def test_an_unreachable_server_is_an_error_not_a_crash() -> None:
    result = run_load("http://127.0.0.1:9/v1/chat/completions", chat_bodies(["a"], "m"), 2, requests=4)
    assert result.answered == 0 and result.errors == 4
    assert set(result.statuses) == {"ConnectError"}


def test_the_prompt_sample_is_fixed_by_its_seed() -> None:
    assert sample_prompts(16) == sample_prompts(16) != sample_prompts(16, seed=1)
    assert len(set(sample_prompts(64))) == 64


def test_k6_offers_its_arrival_rate_whatever_the_answers_take(upstream: FakeUpstream) -> None:
    upstream.reset()
    upstream.behave("ok", delay_s=1.0, record=False)
    bodies = [{"model": "m", "messages": [{"role": "user", "content": f"q{i}"}]} for i in range(4)]
    result = run_k6(upstream.base_url + "/chat/completions", bodies, rate=20, seconds=3, warmup_s=1, expected_s=1)
    # An open loop: 20 arrivals a second although each answer takes 1 s, so about 20 at once.
    assert result.dropped == 0 and result.failed == 0
    assert 50 <= result.answered <= 64 and result.answered_all > result.answered
    assert result.p50_ms >= 1000 and result.generator_cpu_s > 0


def test_k6_counts_503_with_retry_after_apart_from_other_errors(upstream: FakeUpstream) -> None:
    upstream.reset()
    bodies = [{"model": "m", "messages": [{"role": "user", "content": "q"}]}]
    upstream.behave("status", status=503, retry_after=1, record=False)
    shed = run_k6(upstream.base_url + "/chat/completions", bodies, clients=2, seconds=1, warmup_s=0)
    upstream.behave("status", status=500, record=False)
    failed = run_k6(upstream.base_url + "/chat/completions", bodies, clients=2, seconds=1, warmup_s=0)
    assert shed.shed_with_retry_after > 0 and shed.sent == shed.shed_with_retry_after
    assert failed.failed > 0 and failed.sent == failed.failed and failed.answered == 0


def test_k6_closed_loop_waits_for_each_answer(upstream: FakeUpstream) -> None:
    upstream.reset()
    upstream.behave("ok", delay_s=0.5, record=False)
    bodies = [{"model": "m", "messages": [{"role": "user", "content": "q"}]}]
    result = run_k6(upstream.base_url + "/chat/completions", bodies, clients=2, seconds=2, warmup_s=0)
    # Two clients that each wait 0.5 s for an answer send at most 2 × (2 s / 0.5 s) + 2 requests.
    assert 2 <= result.answered <= 10 and result.sent == result.answered


def test_a_profiled_sample_is_charged_to_its_innermost_known_library() -> None:
    entry = "Thread._bootstrap (threading.py:1002);Thread.run (threading.py:982)"
    served = f"{entry};Replica.handle (ray/serve/_private/replica.py:10)"
    raw = "\n".join(
        [
            f"{entry} 5",
            f"{served};Embedding.embed (deployments/embedding.py:40);Linear.forward (torch/nn/linear.py:134) 3",
            f"{served};RoutingEngine.plan (routing/serving/engine.py:20) 1",
            f"{served};RoutingEngine.plan (routing/serving/engine.py:20);BaseModel.model_dump (pydantic/main.py:5) 1",
        ]
    )
    assert parts(raw) == {
        "native code (Ray's core worker, gRPC's C core, uvloop)": 0.5,
        "model (torch, transformers)": 0.3,
        "the service's own code": 0.1,
        "pydantic": 0.1,
    }
