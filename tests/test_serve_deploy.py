"""``serve deploy`` against a running cluster: a changed ``user_config`` of a Router deployment
moves its default thresholds and swaps its checkpoint on the live replicas, which keep running;
a bad one is refused. And the loop from logged traffic to a retrained router in service."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from routing.calibration import load_calibration
from routing.resources import CHECKPOINT_DIR
from routing.serving.request_log import read_request_log
from testing import ROOT
from testing.apps import fake_pair_args, graph_config, on_fake
from testing.cluster import Cluster, for_serve_deploy, serve_deploy
from testing.fake_upstream import FakeUpstream
from testing.traffic import Traffic, wait_for

pytestmark = pytest.mark.cluster

DEADLINE_S = 180
METRICS_EXPORT_INTERVAL_S = 10  # Ray's default metrics_report_interval_ms
clusters: list[Cluster] = []  # for the timeout message of wait_until
MESSAGES = [{"role": "user", "content": "Summarise the causes of the French Revolution."}]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with for_serve_deploy() as started:
        clusters[:] = [started]
        yield started


def serve_config(cluster: Cluster, args: dict[str, Any], user_config: dict[str, Any] | None) -> dict:
    """The graph's config, ``user_config`` (if any) on the Router-mf deployment."""
    router: dict[str, Any] = {"name": "Router-mf", "ray_actor_options": {"num_cpus": 0.1}}
    if user_config is not None:
        router["user_config"] = user_config
    return graph_config(
        args,
        [
            {"name": "Ingress", "ray_actor_options": {"num_cpus": 0.2}},
            {"name": "Embedding", "ray_actor_options": {"num_cpus": 0.3}},
            router,
            {"name": "LLM-strong", "ray_actor_options": {"num_cpus": 0.1}},
            {"name": "LLM-weak", "ray_actor_options": {"num_cpus": 0.1}},
        ],
        port=cluster.http_port,
    )


def status(cluster: Cluster) -> dict:
    """``serve status`` as an operator runs it."""
    printed = subprocess.run(
        ["serve", "status", "--address", cluster.dashboard_url], check=True, capture_output=True, text=True
    ).stdout
    return yaml.safe_load(printed)


def wait_until(predicate: Any, what: str) -> Any:
    return wait_for(predicate, what, DEADLINE_S, describe=lambda: status(clusters[0]))


def app_status(cluster: Cluster) -> str:
    return status(cluster)["applications"]["router"]["status"]


def get(cluster: Cluster, path: str) -> dict:
    with httpx.Client(timeout=30) as client:
        return client.get(f"{cluster.url}{path}").raise_for_status().json()


def route(cluster: Cluster, model: str) -> dict:
    url = f"{cluster.url}/v1/route"
    with httpx.Client(timeout=30) as client:
        response = client.post(url, json={"model": model, "messages": MESSAGES})
    assert response.status_code == 200, response.text
    return response.json()


def test_user_config_moves_default_thresholds_without_a_restart(
    cluster: Cluster, tmp_path: Path, strong: FakeUpstream, weak: FakeUpstream
) -> None:
    args = fake_pair_args(strong, weak, routers={"mf": {"type": "mf", "default_threshold": 0.25}})
    serve_deploy(cluster, serve_config(cluster, args, None), tmp_path)
    wait_until(lambda: app_status(cluster) == "RUNNING", "the application")
    replicas = router_actors()
    assert len(replicas) == 1
    assert route(cluster, "router-mf")["threshold"] == 0.25

    serve_deploy(cluster, serve_config(cluster, args, {"default_strong_percent": 30}), tmp_path)
    expected = load_calibration(CHECKPOINT_DIR / "mf").threshold(30)  # type: ignore[union-attr]
    decision = wait_until(lambda: (d := route(cluster, "router-mf")).get("strong_percent") == 30 and d, "the update")
    assert decision["threshold"] == pytest.approx(expected)
    assert router_actors() == replicas, "the Router replica was restarted"

    serve_deploy(cluster, serve_config(cluster, args, {"default_threshold": 0.9}), tmp_path)
    wait_until(lambda: route(cluster, "router-mf")["threshold"] == 0.9, "the second update")
    assert router_actors() == replicas

    # Two defaults at once: refused with the key's path; the service keeps answering with the
    # previous defaults on the same replica.
    serve_deploy(
        cluster, serve_config(cluster, args, {"default_threshold": 0.1, "default_strong_percent": 30}), tmp_path
    )
    routers = wait_until(
        lambda: (h := get(cluster, "/health/routers")["mf"]).get("user_config_error") and h, "the refusal"
    )
    assert "set default_strong_percent or default_threshold, not both" in routers["user_config_error"]
    assert app_status(cluster) == "RUNNING"
    assert route(cluster, "router-mf")["threshold"] == 0.9 and router_actors() == replicas


def embedding_batches(cluster: Cluster) -> float:
    """Batches the Embedding replicas have run so far, from Serve's own counter."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        sample.value
        for family in text_string_to_metric_families(httpx.get(cluster.metrics_url, timeout=10).text)
        for sample in family.samples
        if sample.name == "ray_routellm_batches_total" and sample.labels.get("deployment") == "Embedding"
    )


def routed_together(cluster: Cluster, count: int) -> None:
    """``count`` routing requests at once, each with its own prompt."""

    async def all_at_once() -> None:
        url = f"{cluster.url}/v1/route"
        async with httpx.AsyncClient(timeout=60) as client:
            responses = await asyncio.gather(
                *(
                    client.post(url, json={"model": "router-mf", "messages": [{"role": "user", "content": f"Q{i}?"}]})
                    for i in range(count)
                )
            )
        assert all(r.status_code == 200 for r in responses)

    asyncio.run(all_at_once())


def batches_for(cluster: Cluster, count: int, at_least: int) -> float:
    """Batches the Embedding deployment ran for ``count`` simultaneous requests: counted once
    ``at_least`` have reached the metrics endpoint and a further export interval added none."""
    # Batches run before (the ingress's readiness probe at start) reach the endpoint first.
    time.sleep(METRICS_EXPORT_INTERVAL_S + 2)
    before = embedding_batches(cluster)
    routed_together(cluster, count)
    wait_until(lambda: embedding_batches(cluster) - before >= at_least, "the batch metrics")
    time.sleep(METRICS_EXPORT_INTERVAL_S + 2)
    return embedding_batches(cluster) - before


def test_batching_follows_the_user_config_on_running_replicas(
    cluster: Cluster, tmp_path: Path, strong: FakeUpstream, weak: FakeUpstream
) -> None:
    config = serve_config(cluster, fake_pair_args(strong, weak, routers={"mf": {"type": "mf"}}), None)
    (embedding,) = [d for d in config["applications"][0]["deployments"] if d["name"] == "Embedding"]
    embedding["user_config"] = {"max_batch_size": 1}
    serve_deploy(cluster, config, tmp_path)
    wait_until(lambda: app_status(cluster) == "RUNNING", "the application")
    assert batches_for(cluster, 16, at_least=16) == 16  # one forward pass per request

    embedding["user_config"] = {"max_batch_size": 16, "batch_wait_timeout_s": 0.5}
    serve_deploy(cluster, config, tmp_path)
    wait_until(lambda: app_status(cluster) == "RUNNING", "the update")
    assert batches_for(cluster, 16, at_least=1) < 8  # gathered: 16 requests in a few forward passes


def router_actors() -> set[str]:
    from ray.util.state import list_actors

    alive = list_actors(filters=[("state", "=", "ALIVE")], detail=True)
    return {a.actor_id for a in alive if "Router-mf" in (a.repr_name or "") or "Router-mf" in (a.name or "")}


def router_actor_name(actor_id: str) -> str:
    from ray.util.state import get_actor

    actor = get_actor(actor_id)
    assert actor is not None and actor.name, actor_id
    return actor.name


def test_own_traffic_is_logged_labelled_retrained_evaluated_and_swapped_in(
    cluster: Cluster, tmp_path: Path, strong: FakeUpstream, weak: FakeUpstream
) -> None:
    """The whole loop on a running service: log → label → train → evaluate → hot swap, then the
    Router replica killed, with requests flowing from the first label to after its replacement
    answers, none failing."""
    requests_dir, labels, new = tmp_path / "requests", tmp_path / "labels", tmp_path / "mf-new"
    # Share control off: a share's threshold is then the table's, which shows which table is in use.
    routers = {"mf": {"type": "mf", "share_control": "off"}}
    args = fake_pair_args(strong, weak, routers=routers, request_log={"directory": str(requests_dir)})
    config = serve_config(cluster, args, None)
    serve_deploy(cluster, config, tmp_path)
    wait_until(lambda: app_status(cluster) == "RUNNING", "the application")

    # 1. Traffic, logged by the ingress.
    client = openai.OpenAI(base_url=f"{cluster.url}/v1", api_key="unused")
    questions = [f"Question {i}: {t}" for i, t in enumerate(["prove a lemma", "greet a friend", "sum a series"] * 12)]
    for question in questions:
        client.chat.completions.create(model="router-mf-0.5", messages=[{"role": "user", "content": question}])
    wait_until(lambda: len(list(read_request_log(requests_dir))) == len(questions), "the request log")

    calls = [("/v1/chat/completions", model) for model in ("router-mf-0.5", "router-mf-30%", "router-mf")]
    with Traffic(cluster.url, calls) as traffic:
        label_logged_prompts(tmp_path, requests_dir, labels, strong, weak)
        retrain_and_compare(tmp_path, requests_dir, labels, new)
        expected = swap_in(cluster, config, tmp_path, new)
        killed_router_comes_back_on(cluster, new, expected)
        time.sleep(2)
    assert traffic.failures == [] and len(traffic.statuses) >= 20


def label_logged_prompts(
    tmp_path: Path, requests_dir: Path, labels: Path, strong: FakeUpstream, weak: FakeUpstream
) -> None:
    from routing.offline.cli import main as cli

    judge = FakeUpstream("judge")
    try:
        strong.behave("ok", answer="per_prompt")
        weak.behave("ok", answer="per_prompt")
        judge.behave("ok", answer="judge")
        label_config = {
            "upstreams": {
                "strong": on_fake(strong, "big"),
                "weak": on_fake(weak, "small"),
            },
            "judge": {"model": "judge-1", "base_url": judge.base_url},
            "grading": ["pairwise", "single"],
            "test_fraction": 0.3,
        }
        (tmp_path / "label.yaml").write_text(yaml.safe_dump(label_config))
        cli(["label", "--config", str(tmp_path / "label.yaml"), "--prompts", str(requests_dir), "--out", str(labels)])
    finally:
        judge.stop()
        strong.behave("ok")
        weak.behave("ok")
    assert (labels / "train" / "battles.jsonl").exists() and (labels / "test" / "judge_scores.jsonl").exists()


def retrain_and_compare(tmp_path: Path, requests_dir: Path, labels: Path, new: Path) -> None:
    """mf retrained on the new labels mixed with shipped data, weighted up, and calibrated on the
    log; then new against current on the held-out labels."""
    from routing.offline.cli import main as cli

    shipped = str(ROOT / "data" / "train" / "vicuna-bench.battles.jsonl.gz")
    cli(["train", "mf", "--data", shipped, "--data", str(labels / "train"), "--weight", f"{labels / 'train'}=3",
         "--strong", "big", "--weak", "small", "--epochs", "3", "--out", str(new)])  # fmt: skip
    cli(["calibrate", "--router", f"mf={new}", "--prompts", str(requests_dir), "--save"])
    cli(["evaluate", "--labels", str(labels / "test"), "--router", "mf", "--router", f"mf={new}", "--strong", "big",
         "--weak", "small", "--setting", "out-of-domain", "--out", str(tmp_path / "results")])  # fmt: skip
    reports = json.loads((tmp_path / "results" / "results.json").read_text())
    assert {r["benchmark"] for r in reports} == {"test-pairwise", "test-graded"}
    assert all({"mf", "mf@mf-new"} <= {row["router"] for row in r["routers"]} for r in reports)


def swap_in(cluster: Cluster, config: dict, tmp_path: Path, new: Path) -> float:
    """A bad checkpoint first (refused: the current one serves on), then the new one, on the same
    Router replica: one change to the Router's ``user_config`` brings the model and its table.
    Returns the new checkpoint's score of the probe prompt."""
    from routing.config import LocalEmbedding
    from routing.embeddings.local import LocalEmbedder
    from routing.routers.mf import MFRouter
    from routing.serving.live_router import checkpoint_id

    probe = "Question 0: prove a lemma"
    old_score = route_score(cluster, probe)
    expected = float(MFRouter(new).score([probe], LocalEmbedder(LocalEmbedding()).encode([probe]))[0])
    assert abs(expected - old_score) > 1e-3
    routers_before = router_actors()
    assert len(routers_before) == 1
    mf_deployment = next(d for d in config["applications"][0]["deployments"] if d["name"] == "Router-mf")

    mf_deployment["user_config"] = {"checkpoint": str(tmp_path / "missing")}
    serve_deploy(cluster, config, tmp_path)
    refused = wait_until(lambda: get(cluster, "/health/routers")["mf"].get("swap_error"), "the refusal")
    assert "does not exist" in refused and app_status(cluster) == "RUNNING"
    assert route_score(cluster, probe) == pytest.approx(old_score)

    mf_deployment["user_config"] = {"checkpoint": str(new)}
    serve_deploy(cluster, config, tmp_path)
    wait_until(lambda: abs(route_score(cluster, probe) - expected) < 1e-3, "the new checkpoint")
    # Its table came with it: the very next share-routed request uses it.
    shares_on_new(cluster, new, checkpoint_id(new))
    assert router_actors() == routers_before, "the Router replica was restarted"
    return expected


def shares_on_new(cluster: Cluster, new: Path, new_id: str) -> None:
    url = f"{cluster.url}/v1/route"
    response = httpx.post(url, json={"model": "router-mf-30%", "messages": MESSAGES}, timeout=30).raise_for_status()
    assert response.headers["x-route-checkpoint"] == new_id
    assert response.json()["threshold"] == pytest.approx(load_calibration(new).threshold(30))  # type: ignore[union-attr]


def killed_router_comes_back_on(cluster: Cluster, new: Path, expected: float) -> None:
    """A Router replica lost after the swap is replaced by one serving the checkpoint in force."""
    import ray

    from routing.serving.live_router import checkpoint_id

    (killed,) = router_actors()
    ray.kill(ray.get_actor(router_actor_name(killed), namespace="serve"), no_restart=True)
    wait_until(lambda: (alive := router_actors()) and killed not in alive, "a new Router replica")
    probe = "Question 0: prove a lemma"
    wait_until(lambda: abs(route_score(cluster, probe) - expected) < 1e-3, "the new replica to answer")
    assert get(cluster, "/health/routers")["mf"] == {"checkpoint": checkpoint_id(new), "calibrated": True}
    shares_on_new(cluster, new, checkpoint_id(new))


def route_score(cluster: Cluster, prompt: str) -> float:
    url = f"{cluster.url}/v1/route"
    body = {"model": "router-mf-0.5", "messages": [{"role": "user", "content": prompt}]}
    return float(httpx.post(url, json=body, timeout=30).raise_for_status().json()["score"])
