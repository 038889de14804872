"""A learned version reaches every Router replica through Serve: the Learner deployment sends the
version in service, checkpoint files included, and each replica serves its own copy of them; a
replica that starts later asks the learner for the version in service."""

from __future__ import annotations

import asyncio
import filecmp
import pickle
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from learning_setup import learner_args

from routing.offline.cli import main as cli
from routing.resources import CHECKPOINT_DIR
from routing.serving.learned_version import LearnedVersion
from routing.serving.live_router import checkpoint_id
from testing.apps import graph_config
from testing.cluster import Cluster, deployed
from testing.fake_upstream import FakeUpstream
from testing.traffic import Traffic, wait_for

BUILTIN_MF = CHECKPOINT_DIR / "mf"
PROBES = 24  # at once: both replicas get some


def test_a_version_travels_with_its_files_and_unpacks_under_its_number(tmp_path: Path) -> None:
    version = LearnedVersion.of_directory("mf", 3, 12.5, "promotion", BUILTIN_MF)
    assert set(version.files) == {p.name for p in BUILTIN_MF.iterdir()}
    sent = pickle.loads(pickle.dumps(version))  # as it crosses processes
    first, second = sent.unpacked(tmp_path), sent.unpacked(tmp_path)
    assert first.name == second.name == "3" and first != second
    assert checkpoint_id(first) == checkpoint_id(second)
    assert not filecmp.dircmp(first, BUILTIN_MF).diff_files and not filecmp.dircmp(first, BUILTIN_MF).left_only
    assert sent.tag != LearnedVersion.of_directory("mf", 3, 13.0, "rollback", BUILTIN_MF).tag


def test_version_zero_travels_without_files_and_a_missing_checkpoint_is_named(tmp_path: Path) -> None:
    assert LearnedVersion.of_directory("mf", 0, 0.0, "rollback", None).files == {}
    with pytest.raises(ValueError, match="version 2 of router 'mf': no checkpoint at"):
        LearnedVersion.of_directory("mf", 2, 1.0, "promotion", tmp_path / "gone")


def test_a_file_that_would_leave_its_directory_is_refused(tmp_path: Path) -> None:
    bad = LearnedVersion(router="mf", version=1, since=1.0, by="promotion", files={"../../evil": b"x"})
    with pytest.raises(ValueError, match="leaves it"):
        bad.unpacked(tmp_path / "cache")
    assert not (tmp_path / "evil").exists()


@pytest.fixture
def service(tmp_path: Path, strong: FakeUpstream, weak: FakeUpstream, judge_server: FakeUpstream) -> Iterator[Cluster]:
    """A router that learns, on two Router replicas; no round starts (too few requests)."""
    args = learner_args(strong, weak, judge_server, tmp_path, every_requests=100_000)
    small = {"num_cpus": 0.1}
    deployments = [
        {"name": "Ingress", "ray_actor_options": {"num_cpus": 0.2}},
        {"name": "Embedding", "ray_actor_options": {"num_cpus": 0.3}},
        {"name": "Router-mf", "num_replicas": 2, "ray_actor_options": small},
        {"name": "Router-random", "ray_actor_options": small},
        {"name": "LLM-strong", "ray_actor_options": small},
        {"name": "LLM-weak", "ray_actor_options": small},
    ]
    config = graph_config(args, deployments)
    # Ray's socket paths must stay short: its session directory goes under /tmp, not tmp_path.
    with tempfile.TemporaryDirectory() as ray_dir, deployed(config, Path(ray_dir), dashboard=True) as cluster:
        yield cluster


def served_checkpoints(url: str) -> set[str]:
    """The checkpoints that answer a burst of routing requests, sent at once."""

    async def burst() -> list[str]:
        body = {"model": "router-mf-0.5", "messages": [{"role": "user", "content": "prove the lemma"}]}
        async with httpx.AsyncClient(timeout=30) as client:
            answers = await asyncio.gather(*(client.post(f"{url}/v1/route", json=body) for _ in range(PROBES)))
        return [a.raise_for_status().headers["x-route-checkpoint"] for a in answers]

    return set(asyncio.run(burst()))


def router_replicas() -> dict[str, int]:
    """Router-mf's live replicas: actor name → process id."""
    from ray.util.state import list_actors

    alive = list_actors(filters=[("state", "=", "ALIVE")], detail=True)
    return {a.name: a.pid for a in alive if "Router-mf" in (a.name or "")}


def own_copies(pid: int) -> list[Path]:
    """The version directories a replica process keeps of its own."""
    return sorted(Path(tempfile.gettempdir()).glob(f"routellm-learned-mf-{pid}-*/*/*"))


def all_serve(url: str, checkpoint: str, what: str) -> None:
    wait_for(lambda: served_checkpoints(url) == {checkpoint}, what, 120, interval_s=0.5)


@pytest.mark.cluster
def test_a_promotion_and_a_rollback_reach_every_router_replica_without_a_shared_directory(
    service: Cluster, tmp_path: Path
) -> None:
    url, state = service.url, tmp_path / "learner"
    configured = checkpoint_id(BUILTIN_MF)
    version = state / "mf" / "versions" / "1"
    shutil.copytree(BUILTIN_MF, version)  # a challenger, as a round leaves it
    replicas = router_replicas()
    assert len(replicas) == 2
    assert served_checkpoints(url) == {configured}

    with Traffic(url, [("/v1/route", "router-mf-0.5"), ("/v1/chat/completions", "router-mf-0.5")]) as traffic:
        cli(["promote", "mf", "--directory", str(state)])
        all_serve(url, checkpoint_id(version), "every replica to serve version 1")
        assert router_replicas() == replicas, "a Router replica was restarted"
        for pid in replicas.values():  # each replica serves files of its own, received through Serve
            (copy,) = own_copies(pid)
            assert copy.name == "1" and not copy.is_relative_to(state)
            assert filecmp.cmpfiles(copy, version, [p.name for p in version.iterdir()], shallow=False)[0]

        # A replica that starts now asks the learner which version is in service.
        import ray

        lost = next(iter(replicas))
        ray.kill(ray.get_actor(lost, namespace="serve"), no_restart=True)
        wait_for(lambda: len(now := router_replicas()) == 2 and lost not in now, "a new Router replica", 120)
        all_serve(url, checkpoint_id(version), "the new replica to serve version 1")

        cli(["rollback", "mf", "--directory", str(state)])
        all_serve(url, configured, "every replica back on the configured checkpoint")
        assert all(own_copies(pid) == [] for pid in router_replicas().values())

    assert traffic.failures == [] and len(traffic.statuses) >= 10
