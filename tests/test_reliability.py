"""The service under faults, on a real Ray cluster: the scenarios of ``python -m bench.reliability``.

One cluster runs the application of ``serve_config.yaml`` (JSON logs, metrics endpoint, API keys
from a secret file, two mf router replicas) against two fake upstream processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.reliability import checks, outcomes, scenarios
from bench.reliability.apis import APIS, chat
from bench.reliability.outcomes import Tally
from bench.reliability.scenarios import FAULTS
from bench.reliability.service import LIMITS, METRICS, Service, running_service

pytestmark = pytest.mark.cluster

REQUESTS, CONCURRENCY = 4, 2
OTHER_APIS = ("responses", "messages")
API_FAULTS = [("http_500", False), ("http_500", True), ("cut_before_first_token", True)]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    # A short path: Ray puts unix sockets under its temp folder.
    workdir = Path(tmp_path_factory.mktemp("rl", numbered=True))
    with running_service(workdir) as running:
        yield running


def assert_contract(tally: Tally) -> None:
    assert tally.problems == [], tally.row()


CASES = [
    (failing, fault, stream)
    for failing in ("strong", "weak")
    for fault in FAULTS
    for stream in ((False, True) if not fault.startswith("cut") else (True,))
]


@pytest.mark.parametrize(
    ("failing", "fault", "stream"), CASES, ids=[f"{w}-{f}-{'stream' if s else 'complete'}" for w, f, s in CASES]
)
def test_one_failing_model_every_request_is_answered_by_the_other(
    service: Service, failing: str, fault: str, stream: bool
) -> None:
    tally = scenarios.one_upstream_failing(service, fault, failing, stream, REQUESTS, CONCURRENCY)
    assert_contract(tally)
    assert tally.answered == tally.sent == REQUESTS, tally.row()
    # Every answer says why another model gave it; after a few failures the circuit opens.
    assert sum(tally.fallbacks.values()) == REQUESTS, tally.row()
    expected = {
        "http_500": "upstream_error",
        "http_429": "upstream_rate_limited",
        "hang": "upstream_timeout",
        "refused": "upstream_unreachable",
        "malformed_json": "upstream_malformed",
        "cut_before_first_token": "upstream_unreachable",
    }[fault]
    assert set(tally.fallbacks) <= {expected, "circuit_open"} and expected in tally.fallbacks, tally.row()


API_CASES = [(api, fault, stream) for api in OTHER_APIS for fault, stream in API_FAULTS]


@pytest.mark.parametrize(
    ("api", "fault", "stream"), API_CASES, ids=[f"{a}-{f}-{'stream' if s else 'complete'}" for a, f, s in API_CASES]
)
def test_the_responses_and_messages_apis_fall_back_too(service: Service, api: str, fault: str, stream: bool) -> None:
    tally = scenarios.one_upstream_failing(service, fault, "strong", stream, REQUESTS, CONCURRENCY, APIS[api])
    assert_contract(tally)  # each stream ended with its API's own terminator
    assert tally.answered == tally.sent == REQUESTS and sum(tally.fallbacks.values()) == REQUESTS, tally.row()


@pytest.mark.parametrize(("api", "event"), [("chat", "upstream_error"), ("responses", "upstream_error"),
                                            ("messages", "api_error")])  # fmt: skip
def test_a_stream_cut_after_bytes_were_sent_ends_with_an_error_event(service: Service, api: str, event: str) -> None:
    tally = scenarios.stream_cut_midway(service, REQUESTS, CONCURRENCY, APIS[api])
    assert_contract(tally)
    assert not tally.fallbacks and tally.failed == {f"stream_error {event}": REQUESTS}, tally.row()


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("fault", ["http_500", "hang", "refused"])
def test_both_models_down_gives_openai_errors_within_the_time_limits(
    service: Service, fault: str, stream: bool
) -> None:
    tally = scenarios.both_down(service, fault, stream, REQUESTS, CONCURRENCY)
    assert_contract(tally)
    assert tally.answered == 0 and all(reason.split()[0] in ("502", "504") for reason in tally.failed), tally.row()
    # Each model gets at most its own time limits: first token (stream) or total, plus slack.
    per_model = LIMITS["first_token_s" if stream else "total_s"]
    assert max(tally.latencies_s) < 2 * per_model + 1.0, tally.row()


@pytest.mark.parametrize("deployment", ["Router-mf", "Embedding"])
def test_killing_a_routing_replica_under_load_loses_no_request(service: Service, deployment: str) -> None:
    before = len(scenarios.replica_processes(deployment))
    tally = scenarios.replica_killed_under_load(service, deployment, 60, 4)
    assert_contract(tally)
    assert tally.answered == tally.sent == 60, tally.row()
    assert before >= 1


def test_a_full_queue_answers_503_with_retry_after(service: Service) -> None:
    tally = scenarios.overload(service, 40)
    assert_contract(tally)  # every 503 carried Retry-After
    assert tally.failed["503 overloaded"] > 0 and tally.answered >= 8, tally.row()
    # A request may also outwait its time limit in the queue: then it is a 504, never a hang.
    assert set(tally.failed) <= {"503 overloaded", "504 upstream_timeout"}, tally.row()


def test_malformed_requests_each_get_a_4xx_in_their_apis_shape(service: Service) -> None:
    assert len(scenarios.MALFORMED_CORPUS) >= 70
    tally = scenarios.malformed_requests(service)
    assert_contract(tally)  # includes: a good request is answered afterwards
    assert tally.sent == len(scenarios.MALFORMED_CORPUS) and tally.answered == 0
    assert all(400 <= int(reason.split()[0]) < 500 for reason in tally.failed), tally.row()


def test_every_missing_or_wrong_key_is_401(service: Service) -> None:
    tally = scenarios.unauthenticated(service)
    assert_contract(tally)
    assert tally.answered == 0 and set(tally.failed) <= {
        "401 missing_api_key", "401 invalid_api_key", "401 authentication_error",  # the last: the Messages API's
    }, tally.row()  # fmt: skip


def test_request_ids_are_echoed_and_logged(service: Service) -> None:
    result = checks.request_id_round_trip(service)
    assert result["status"] == 200 and result["echoed"]
    assert any(line.startswith("routed router=mf") for line in result["log_lines"]), result


def test_metrics_show_real_values_after_the_load(service: Service) -> None:
    metrics = checks.scrape_metrics(service)
    missing = [name for name in METRICS if metrics.get(name, 0) <= 0]
    assert not missing, metrics
    assert 0 < metrics["ray_routellm_strong_share"] <= 1
    assert metrics["ray_routellm_cost_saved_usd_total"] < metrics["ray_routellm_cost_all_strong_usd_total"]


def test_no_api_key_in_any_log(service: Service) -> None:
    # The upstream key did reach the upstream, so it was in use while the logs were written.
    service.reset()
    checks.request_id_round_trip(service)
    asyncio.run(outcomes.load(service, "direct", [chat("big")] * 2, 1))
    assert any(r["authorization"] == f"Bearer {service.upstream_key}" for r in service.strong.requests())
    assert checks.keys_in_logs(service) == {"ingress key": 0, "upstream key": 0}
