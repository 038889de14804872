"""Two Ray nodes on one machine: the graph spread over them as over a CPU and a GPU worker.

A head node offers the custom resource ``cpu_worker`` (the ingress and the LLM clients ask for
it), a second node joined with ``ray start --address`` offers ``router_node``, standing for a GPU
worker (the embedding model and the router ask for it). The placement is read back from Ray's
state API; every request must be answered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from testing import cluster as clusters
from testing.apps import fake_pair_args, graph_config
from testing.cluster import Cluster
from testing.fake_upstream import FakeUpstream

pytestmark = pytest.mark.cluster

CPU_DEPLOYMENTS = ("Ingress", "LLM-strong", "LLM-weak")
ROUTER_STAGE = ("Embedding", "Router-mf")


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    temp = Path(tmp_path_factory.mktemp("mn"))
    with clusters.two_nodes(temp, '{"cpu_worker": 100}', '{"router_node": 100}') as cluster:
        yield cluster


def placed_config(args: dict[str, Any], http_port: int) -> dict[str, Any]:
    deployments = [
        {"name": name, "ray_actor_options": {"num_cpus": 0.1, "resources": {"cpu_worker": 1}}}
        for name in CPU_DEPLOYMENTS
    ] + [
        {"name": name, "ray_actor_options": {"num_cpus": 0.2, "resources": {"router_node": 1}}} for name in ROUTER_STAGE
    ]
    return graph_config(args, deployments, port=http_port)


def test_the_router_stage_runs_on_its_own_node_and_every_request_is_answered(
    two_nodes: Cluster, strong: FakeUpstream, weak: FakeUpstream
) -> None:
    from ray import serve
    from ray.serve._private.api import serve_start
    from ray.serve.schema import ServeDeploySchema
    from ray.util.state import list_actors

    (cpu_node,) = [node for node, resources in two_nodes.nodes.items() if "cpu_worker" in resources]
    (router_node,) = [node for node, resources in two_nodes.nodes.items() if "router_node" in resources]
    args = fake_pair_args(strong, weak, routers={"mf": {"type": "mf"}})
    config = placed_config(args, two_nodes.http_port)
    client = serve_start(http_options=config["http_options"])
    client.deploy_apps(ServeDeploySchema.model_validate(config), _blocking=True)

    deadline = time.monotonic() + 240
    while serve.status().applications["router"].status != "RUNNING":
        assert time.monotonic() < deadline, serve.status()
        time.sleep(1)

    async def ask_all() -> list[httpx.Response]:
        url = f"http://127.0.0.1:{two_nodes.http_port}/v1/chat/completions"
        async with httpx.AsyncClient(timeout=60) as http:
            return await asyncio.gather(
                *(
                    http.post(url, json={"model": "router-mf-0.5", "messages": [{"role": "user", "content": f"Q{i}"}]})
                    for i in range(24)
                )
            )

    responses = asyncio.run(ask_all())
    assert [r.status_code for r in responses] == [200] * 24
    assert {r.headers["x-route-router"] for r in responses} == {"mf"}

    status = serve.status().applications["router"].deployments
    assert {name: d.status.value for name, d in status.items()} == {
        name: "HEALTHY" for name in CPU_DEPLOYMENTS + ROUTER_STAGE
    }
    replicas = [
        a for a in list_actors(filters=[("state", "=", "ALIVE")], detail=True) if "ServeReplica" in a.class_name
    ]
    node_of = {a.class_name.rsplit(":", 1)[-1]: a.node_id for a in replicas}
    assert {name: node_of[name] for name in CPU_DEPLOYMENTS} == dict.fromkeys(CPU_DEPLOYMENTS, cpu_node)
    assert {name: node_of[name] for name in ROUTER_STAGE} == dict.fromkeys(ROUTER_STAGE, router_node)
