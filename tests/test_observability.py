"""The dashboard and the alerts: promtool checks the rules and fires each on synthetic series;
a real Prometheus scraping a real cluster under traffic answers every panel's query and every
alert's signal; the router's own metrics pass ``promtool check metrics``."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
import yaml

from bench import observability as obs
from observability import build
from testing import ROOT
from testing.apps import on_fake
from testing.cluster import free_port, in_process
from testing.fake_upstream import FakeUpstream

PROMTOOL = shutil.which("promtool")
needs_prometheus = pytest.mark.skipif(
    PROMTOOL is None or shutil.which("prometheus") is None,
    reason="Debian's prometheus package (installed by .ci/run) is missing",
)


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=120)


@needs_prometheus
def test_the_rules_pass_promtool_and_each_alert_fires_on_trouble_only() -> None:
    checked = promtool("check", "rules", "observability/alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "observability/alerts_test.yml")
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr
    tests = yaml.safe_load((ROOT / "observability" / "alerts_test.yml").read_text())["tests"]
    fired = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case["exp_alerts"]}
    assert fired == set(obs.alert_signals())
    config = promtool("check", "config", "observability/prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr


def test_the_k8s_manifests_carry_the_dashboard_and_the_rules() -> None:
    configmap = yaml.safe_load(build.DASHBOARD_CONFIGMAP.read_text())
    assert configmap == build.dashboard_configmap()
    for profile in build.PROFILE_BOUNDS:
        assert yaml.safe_load(build.prometheus_rule_file(profile).read_text()) == build.prometheus_rule(profile)
    assert build.DASHBOARD.read_text() == configmap["data"]["routellm.json"]


def test_every_alert_is_a_signal_against_a_number() -> None:
    signals = obs.alert_signals()
    assert set(signals) == {
        "RouteLLMShareOffTarget",
        "RouteLLMFallbackRateHigh",
        "RouteLLMCircuitOpen",
        "RouteLLMRoutingOverheadHigh",
        "RouteLLMUpstreamErrorRateHigh",
        "RouteLLMLearnerBudgetExhausted",
        "RouteLLMUpstreamKeyRejected",
    }
    assert signals["RouteLLMCircuitOpen"] == "max by (model) (ray_routellm_circuit_open)"


SENT = ("router-mf-30%", "router-mf-0.5")


@pytest.fixture(scope="module")
def scraped(
    upstreams: dict[str, FakeUpstream], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, str]]:
    """(service URL, Prometheus URL, metrics URL) after traffic with a failing spell of the strong
    model; a third upstream, 'spare', refuses the key the service holds for it (it takes the random
    router's place on the two CPUs: no router sends to it)."""
    strong, weak, judge = upstreams["strong"], upstreams["weak"], upstreams["judge"]
    judge.behave("ok", answer="judge")
    spare = FakeUpstream("spare", api_key="sk-not-the-services")
    state = tmp_path_factory.mktemp("observability")
    args = obs.app_args(strong, weak, judge, state)
    del args["routers"]["random"]
    args["upstreams"]["spare"] = on_fake(spare, "spare")
    port = free_port()
    try:
        with (
            in_process(args, metrics_port=port) as cluster,
            obs.prometheus(port, state / "prometheus") as prometheus,
        ):
            obs.send(cluster.url, 30, models=SENT)
            strong.behave("status", status=500)
            obs.send(cluster.url, 30, tag="failing", models=SENT)
            strong.behave("ok")
            obs.send(cluster.url, 15, tag="recovered", models=SENT)
            yield cluster.url, prometheus, f"http://127.0.0.1:{port}/metrics"
    finally:
        spare.stop()
        strong.behave("ok")


def answered(prometheus: str, queries: dict[str, str], deadline_s: float = 90) -> dict[str, int]:
    """Each query's number of series, once all have some or at the deadline (Ray exports every 10 s)."""
    ends = time.monotonic() + deadline_s
    while True:
        counts = {name: len(obs.query(prometheus, expr)) for name, expr in queries.items()}
        if all(counts.values()) or time.monotonic() > ends:
            return counts
        time.sleep(2)


@pytest.mark.cluster
@needs_prometheus
def test_prometheus_answers_every_panel_and_every_alert_signal(scraped: tuple[str, str, str]) -> None:
    _, prometheus, _ = scraped
    queries = {**obs.panel_queries(), **{f"alert {k}": v for k, v in obs.alert_signals().items()}}
    counts = answered(prometheus, queries)
    assert all(counts.values()), {name: n for name, n in counts.items() if not n}
    opened = obs.query(prometheus, "max_over_time(max by (model) (ray_routellm_circuit_open)[10m:1s])")
    assert {r["metric"]["model"]: float(r["value"][1]) for r in opened} == {"big": 1.0, "small": 0.0, "spare": 0.0}
    refused = obs.query(prometheus, "max by (model) (ray_routellm_upstream_key_rejected)")
    assert {r["metric"]["model"]: float(r["value"][1]) for r in refused} == {"big": 0.0, "small": 0.0, "spare": 1.0}
    labels = obs.query(prometheus, "ray_routellm_decisions_total")[0]["metric"]
    assert "WorkerId" not in labels and {"application", "deployment", "router", "target"} <= set(labels)


@pytest.mark.cluster
@needs_prometheus
def test_health_names_the_upstream_that_refuses_its_key(scraped: tuple[str, str, str]) -> None:
    url, _, _ = scraped
    health = httpx.get(url + "/health", timeout=30).json()
    assert health["status"] == "ready"  # the spare's requests would fall back; the service still serves
    assert health["upstreams"] == {
        "big": "configured",
        "small": "configured",
        "spare": "key rejected: HTTP 401: Incorrect API key provided.",
    }


@pytest.mark.cluster
@needs_prometheus
def test_the_routers_own_metrics_pass_promtool(scraped: tuple[str, str, str]) -> None:
    _, _, metrics_url = scraped
    own = obs.own_metrics(httpx.get(metrics_url, timeout=30).text)
    families = {line.split()[2] for line in own.splitlines() if line.startswith("# TYPE ")}
    assert {"ray_routellm_share_realized", "ray_routellm_routing_seconds", "ray_routellm_circuit_open"} <= families
    assert "ray_routellm_upstream_latency_seconds" in families
    checked = promtool("check", "metrics", stdin=own)
    assert checked.returncode == 0 and checked.stdout + checked.stderr == "", checked.stdout + checked.stderr
    raw = promtool("check", "metrics", stdin=httpx.get(metrics_url, timeout=30).text)
    assert "camelCase" in raw.stdout + raw.stderr  # what the scrape configs drop: Ray's process labels
