"""The learner on a running service, twice round the loop: traffic → a round → promotion on the
same Router replica; a second round whose challenger is worse is not promoted; a rollback brings
the first checkpoint back. Requests flow throughout, and none fails."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from learning_setup import learner_args, questions, winners

from routing.offline.cli import main as cli
from routing.offline.labelling.run import distinct_prompts
from routing.offline.learning.sampling import in_test_slice
from testing.cluster import in_process
from testing.fake_upstream import FakeUpstream
from testing.traffic import Traffic, wait_for

pytestmark = pytest.mark.cluster

DEADLINE_S = 240
PROBE = "Probe: please prove the theorem about primes"
TEST = 0.4  # the share of uniformly sampled prompts that test
# Beside the rounds: chat requests routed by another router (so that they start no round), and
# routing decisions of the learning router at a threshold and at a share.
CALLS = [("/v1/chat/completions", "router-random-0.5"), ("/v1/route", "router-mf-0.5"), ("/v1/route", "router-mf-30%")]


@pytest.fixture
def judge(judge_server: FakeUpstream, strong: FakeUpstream, weak: FakeUpstream) -> FakeUpstream:
    strong.behave("ok", answer="per_prompt")
    weak.behave("ok", answer="per_prompt")
    return judge_server


@pytest.fixture
def service(tmp_path: Path, strong: FakeUpstream, weak: FakeUpstream, judge: FakeUpstream) -> Iterator[str]:
    args = learner_args(strong, weak, judge, tmp_path, labels_per_round=80, every_requests=80, test_fraction=TEST)
    with in_process(args, dashboard=True) as cluster:
        yield cluster.url


def wait_until(predicate: Callable[[], Any], what: str) -> Any:
    return wait_for(predicate, what, DEADLINE_S, interval_s=0.5)


def probe(url: str) -> tuple[float, str]:
    body = {"model": "router-mf-0.5", "messages": [{"role": "user", "content": PROBE}]}
    response = httpx.post(f"{url}/v1/route", json=body, timeout=30).raise_for_status()
    return float(response.json()["score"]), response.headers["x-route-checkpoint"]


def learner_status(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/health/learner", timeout=30).raise_for_status().json()


def router_replicas() -> set[str]:
    from ray.util.state import list_actors

    alive = list_actors(filters=[("state", "=", "ALIVE")], detail=True)
    return {a.actor_id for a in alive if "Router-mf" in (a.repr_name or "") or "Router-mf" in (a.name or "")}


def send(url: str, prompts: list[str]) -> None:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused")
    for prompt in prompts:
        client.chat.completions.create(model="router-mf-0.5", messages=[{"role": "user", "content": prompt}])


def test_the_learner_promotes_refuses_a_worse_challenger_and_rolls_back(
    service: str, tmp_path: Path, judge: FakeUpstream
) -> None:
    url = service
    first_round, second_round = questions("First", 80), questions("Second", 80)
    judge.behave("ok", answer="oracle", winners=winners(first_round), default="weak")
    score_before, checkpoint_before = probe(url)
    replicas = router_replicas()
    assert len(replicas) == 1

    with Traffic(url, CALLS, questions=5) as traffic:
        # Round 1: the shipped checkpoint knows nothing of this traffic; the challenger learns it.
        send(url, first_round)
        status = wait_until(lambda: (s := learner_status(url)).get("rounds") == 1 and s, "the first round")
        assert status["champion_version"] == 1, status["last_round"]
        promoted = wait_until(lambda: (p := probe(url))[1] != checkpoint_before and p, "the promotion to serve")
        assert abs(promoted[0] - score_before) > 1e-3 and promoted[0] > 0.5  # a hard question: strong
        assert router_replicas() == replicas, "the Router replica was restarted"

        # Round 2: the judge now turns every verdict outside the test slice around; trained on
        # that, the challenger is worse on the test slice than the champion, and stays out.
        poisoned = {
            p: w if in_test_slice(distinct_prompts([p])[0], TEST) else ("weak" if w == "strong" else "strong")
            for p, w in winners(first_round + second_round).items()
        }
        judge.behave("ok", answer="oracle", winners=poisoned, default="strong")
        send(url, second_round)
        status = wait_until(lambda: (s := learner_status(url)).get("rounds") == 2 and s, "the second round")
        assert status["champion_version"] == 1 and not status["last_round"]["promoted"], status["last_round"]
        assert status["last_round"]["outcome"].startswith("kept the champion"), status["last_round"]
        assert probe(url)[1] == promoted[1]

        # The operator goes back to where the service started.
        cli(["rollback", "mf", "--directory", str(tmp_path / "learner")])
        back = wait_until(lambda: (p := probe(url))[1] == checkpoint_before and p, "the rollback to serve")
        assert back[0] == pytest.approx(score_before)
        assert router_replicas() == replicas
        time.sleep(2)

    assert traffic.failures == [] and len(traffic.statuses) >= 30
    status = learner_status(url)
    assert (status["promotions"], status["rollbacks"], status["champion_version"]) == (1, 1, 0)
