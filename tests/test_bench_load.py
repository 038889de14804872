"""The benchmarks' load generator, against the fake upstream server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testing.fake_upstream import FakeUpstream
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
